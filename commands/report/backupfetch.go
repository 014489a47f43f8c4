package report

import (
	"fmt"
	"io"

	"github.com/walnut-pg/walnut/commands/cliargs"
	"github.com/walnut-pg/walnut/restore"
)

// WriteRestored is backup-fetch's closing lines: what was restored, how it
// will recover (rec nil: no recovery settings were written), and how to
// start it. keyFromProcessEnv: restore_command is walnut's own and the
// private key setting came from the process environment, which the server
// may not have; asRoot: the files belong to root.
func WriteRestored(w io.Writer, res *restore.Result, rec *restore.RecoveryOptions, keyFromProcessEnv, asRoot bool) {
	fmt.Fprintf(w, "Restored %s (%d files, %d bytes) into %s.\n", res.Backup.Name, res.Files, res.Bytes, res.Dest)
	switch {
	case rec == nil:
		fmt.Fprintf(w, "No recovery settings written: add restore_command and recovery.signal before starting.\n")
	case rec.Standby:
		fmt.Fprintf(w, "It will start as a standby fetching WAL with: %s\n", rec.RestoreCommand)
	default:
		fmt.Fprintf(w, "It will recover from the archive with: %s\n", rec.RestoreCommand)
	}
	if rec != nil && keyFromProcessEnv && res.Backup.Encrypted {
		fmt.Fprintf(w, "The private key setting came from the process environment: restore_command sees it only if the server is started with it (or use --envdir).\n")
	}
	if asRoot {
		fmt.Fprintf(w, "Restored as root: first give it to the server's user, e.g. chown -R postgres:postgres %s\n", cliargs.ShellQuote(res.Dest))
	}
	fmt.Fprintf(w, "Start it as the database owner:  pg_ctl -D %s -l %s/recovery.log start\n", cliargs.ShellQuote(res.Dest), cliargs.ShellQuote(res.Dest))
}
