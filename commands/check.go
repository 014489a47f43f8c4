package commands

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/check"
	"github.com/walnut-pg/walnut/commands/cliargs"
)

func checkCommand(g *globals) *cli.Command {
	var (
		asJSON  bool
		timeout time.Duration
	)
	return &cli.Command{
		Name:      "check",
		Usage:     "check on the database host that archiving into this archive works",
		ArgsUsage: "[PGDATA]",
		Description: "Connects like backup-push and checks, one line each (ok, warn or FAIL, and what to do):\n" +
			"the store (put, get, stat, list, delete of a probe object) and its clock, the server's\n" +
			"archive_mode, wal_level and archive_command (walnut wal-push into this prefix), a round trip\n" +
			"(pg_switch_wal, then the closed segment must reach the archive within --timeout),\n" +
			"pg_stat_archiver, walnut.json against this cluster, and that no other user can read the\n" +
			"envdir, env file or key files. Exits 1 if any check fails.\n" +
			varsHelp("WALNUT_PREFIX", "PGHOST, PGPORT, PGUSER, ...", "WALNUT_PGP_PRIVATE_KEY_FILE", "WALNUT_PGP_PASSPHRASE_FILE"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the checks as JSON", Destination: &asJSON},
			&cli.DurationFlag{Name: "timeout", Value: check.DefaultTimeout, Usage: "how long the round trip waits for the switched segment, and the store probe may take", Destination: &timeout},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usageError(fmt.Errorf("check: want at most PGDATA, got %d arguments", c.NArg()))
			}
			if timeout <= 0 {
				return usageError(fmt.Errorf("check: --timeout %s: want a positive duration", timeout))
			}
			prefix, _, err := g.env.Prefix()
			if err != nil {
				return usageError(err)
			}
			store, err := g.openStore(c.Context)
			if err != nil {
				return err
			}
			defer store.Close()
			cmd, err := g.walnutCommand()
			if err != nil {
				return err
			}
			results := check.Run(c.Context, check.Options{
				Store:          store,
				Prefix:         prefix,
				DataDir:        c.Args().First(),
				ConnString:     g.env.PGConnString(),
				Timeout:        timeout,
				ArchiveCommand: inspectArchiveCommand,
				Suggested:      cmd + " wal-push %p",
				Secrets:        check.SecretFiles(g.envdir, g.envFile, g.env.Getenv),
				Log:            g.log,
			})
			if err := check.Write(g.stdout, results, asJSON); err != nil {
				return err
			}
			if check.Failed(results) {
				return withCode(ExitFailure, fmt.Errorf("check: %d of %d checks failed", check.CountFailed(results), len(results)))
			}
			return nil
		},
	}
}

// inspectArchiveCommand hands check the reading of archive_command as a
// walnut command line.
func inspectArchiveCommand(command string, serverEnv []string) check.ArchiveCommand {
	return cliargs.InspectArchiveCommand(command, serverEnv)
}
