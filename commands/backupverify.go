package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/commands/cliargs"
	"github.com/walnut-pg/walnut/commands/report"
	"github.com/walnut-pg/walnut/drill"
	"github.com/walnut-pg/walnut/restore"
	"github.com/walnut-pg/walnut/verify"
)

func backupVerifyCommand(g *globals) *cli.Command {
	var (
		all, asJSON, withRestore bool
		scratch, query, binDir   string
		user, role               string
		databases, options       cli.StringSlice
		startTimeout             time.Duration
	)
	return &cli.Command{
		Name:      "backup-verify",
		Usage:     "check that backups restore: decode and check every object, or (--restore) restore one and start it",
		ArgsUsage: "NAME|LATEST|--all",
		Description: "Without --restore: downloads and decodes every partition and checks every file's size and CRC32C\n" +
			"against the backup's manifest, checks pg_control.tar and backup_manifest, and checks that every\n" +
			"WAL segment from the backup's start to its stop is archived, decodes and matches its digest.\n" +
			"Needs no PGDATA and no server, writes nothing, and prints one line per problem naming the object.\n" +
			"\n" +
			"With --restore (the drill): restores the backup into --scratch (default: a new directory under the\n" +
			"system's temp directory), starts a throwaway PostgreSQL on it (private socket, no TCP, archive_mode\n" +
			"off) that recovers to the backup's consistency point with this walnut's wal-fetch and promotes,\n" +
			"runs --query (default: count the rows of every user table in every database), reports the times,\n" +
			"database sizes and rows, then stops the server and removes the scratch directory, on failure too.\n" +
			"Run as root, the server runs as the scratch directory's owner (--user, default postgres).\n" +
			"Exits 1 on any problem.\n" +
			varsHelp("WALNUT_PREFIX", "WALNUT_PGP_PRIVATE_KEY_FILE", "WALNUT_PGP_PASSPHRASE_FILE", "WALNUT_DOWNLOAD_CONCURRENCY", "WALNUT_RATE_LIMIT", "WALNUT_PG_BINDIR"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "check every backup", Destination: &all},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON", Destination: &asJSON},
			&cli.BoolFlag{Name: "restore", Usage: "restore the backup into a scratch directory and start it (the drill)", Destination: &withRestore},
			&cli.StringFlag{Name: "scratch", Usage: "--restore: new or empty `DIR` to restore into (default: under the system's temp directory)", Destination: &scratch},
			&cli.StringFlag{Name: "query", Usage: "--restore: `SQL` to run in each database (default: count the rows of every user table)", Destination: &query},
			&cli.StringSliceFlag{Name: "database", Usage: "--restore: run the query in `DB` only (repeatable; default: every database but templates)", Destination: &databases},
			&cli.StringFlag{Name: "pg-bindir", Usage: "--restore: `DIR` of the backup's PostgreSQL server binaries (default $WALNUT_PG_BINDIR, else found by version)", Destination: &binDir},
			&cli.StringFlag{Name: "user", Usage: "--restore as root: the `ACCOUNT` the server runs as, owning the scratch directory (default postgres)", Destination: &user},
			&cli.StringFlag{Name: "db-user", Usage: "--restore: the database `ROLE` to connect as (default: the account's name)", Destination: &role},
			&cli.StringSliceFlag{Name: "pg-option", Usage: "--restore: a server setting `NAME=VALUE` for the throwaway server (repeatable), e.g. shared_preload_libraries=", Destination: &options},
			&cli.DurationFlag{Name: "start-timeout", Value: drill.DefaultStartTimeout, Usage: "--restore: how long the server may take to become consistent", Destination: &startTimeout},
		},
		Action: func(c *cli.Context) error {
			if withRestore {
				if all || c.NArg() != 1 {
					return usageError(fmt.Errorf("backup-verify --restore: want one NAME or LATEST"))
				}
				settings, err := cliargs.NameValues("pg-option", options.Value())
				if err != nil {
					return usageError(fmt.Errorf("backup-verify: %w", err))
				}
				return runDrill(c, g, drill.Options{
					Name: c.Args().First(), Scratch: scratch, Query: query, Databases: databases.Value(),
					BinDir: binDir, User: user, Role: role, Settings: settings, StartTimeout: startTimeout,
				}, asJSON)
			}
			for _, f := range []string{"scratch", "query", "database", "pg-bindir", "user", "db-user", "pg-option", "start-timeout"} {
				if c.IsSet(f) {
					return usageError(fmt.Errorf("backup-verify: --%s goes with --restore", f))
				}
			}
			if all == (c.NArg() > 0) {
				return usageError(fmt.Errorf("backup-verify: give NAME, LATEST or --all"))
			}
			return runBackupVerify(c, g, all, c.Args().Slice(), asJSON)
		},
	}
}

func runBackupVerify(c *cli.Context, g *globals, all bool, names []string, asJSON bool) error {
	conc, err := g.intSetting("WALNUT_DOWNLOAD_CONCURRENCY", 2)
	if err != nil {
		return err
	}
	rate, err := g.rateLimit()
	if err != nil {
		return err
	}
	kr, err := g.pgpKeyring()
	if err != nil {
		return err
	}
	store, err := g.openStore(c.Context)
	if err != nil {
		return err
	}
	defer store.Close()
	results, err := verify.Backups(c.Context, verify.BackupOptions{
		Store: limitRate(store, rate), Names: names, All: all, Keyring: kr, Concurrency: int(conc), Log: g.log,
	})
	if err != nil {
		return fmt.Errorf("backup-verify: %w", err)
	}
	bad, err := report.WriteBackups(g.stdout, results, asJSON)
	if err != nil {
		return err
	}
	if bad > 0 {
		return withCode(ExitFailure, fmt.Errorf("backup-verify: %d of %d backups have problems", bad, len(results)))
	}
	return nil
}

// runDrill restores with restore.Run and hands the rest to drill.Run:
// job packages do not import each other, so the restore step comes from
// here.
func runDrill(c *cli.Context, g *globals, o drill.Options, asJSON bool) error {
	if o.BinDir == "" {
		o.BinDir = g.env.Getenv("WALNUT_PG_BINDIR")
	}
	conc, err := g.intSetting("WALNUT_DOWNLOAD_CONCURRENCY", 2)
	if err != nil {
		return err
	}
	rate, err := g.rateLimit()
	if err != nil {
		return err
	}
	kr, err := g.pgpKeyring()
	if err != nil {
		return err
	}
	cmd, err := g.walnutCommand()
	if err != nil {
		return err
	}
	// Prefetch would start wal-prefetch processes of their own session,
	// outside the server's process group: the drill could not promise to
	// leave nothing running.
	o.RestoreCommand = cmd + " wal-fetch --prefetch 0 %f %p"
	store, err := g.openStore(c.Context)
	if err != nil {
		return err
	}
	defer store.Close()
	o.Store = store
	o.Env = g.environ
	o.Log = g.log
	o.Restore = func(ctx context.Context, name, dataDir, tsDir string) (drill.RestoreStats, error) {
		res, err := restore.Run(ctx, restore.Options{
			Store: limitRate(store, rate), Dest: dataDir, Name: name, TablespaceDir: tsDir,
			Concurrency: int(conc), Keyring: kr, Log: g.log,
		})
		if err != nil {
			return drill.RestoreStats{}, err
		}
		return drill.RestoreStats{Files: res.Files, Bytes: res.Bytes}, nil
	}
	rep, err := drill.Run(c.Context, o)
	if werr := rep.Write(g.stdout, asJSON); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		if rep.ServerLog != "" && !asJSON {
			fmt.Fprintf(g.stderr, "walnut: the throwaway server's log ended with:\n%s\n", rep.ServerLog)
		}
		return withCode(ExitFailure, fmt.Errorf("backup-verify --restore: %w", err))
	}
	return nil
}
