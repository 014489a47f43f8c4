package commands

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/commands/cliargs"
	"github.com/walnut-pg/walnut/commands/report"
	"github.com/walnut-pg/walnut/config"
	"github.com/walnut-pg/walnut/restore"
)

func backupFetchCommand(g *globals) *cli.Command {
	var (
		rec         restore.RecoveryOptions
		noRecovery  bool
		archiveMode string
		inclusive   bool
		mappings    cli.StringSlice
		poolSize    int
		blind       bool
		specFile    string
	)
	return &cli.Command{
		Name:      "backup-fetch",
		Usage:     "restore a base backup into a new data directory, ready for point-in-time recovery",
		ArgsUsage: "DEST NAME|LATEST",
		Description: "Restores every file, checked against the backup's CRC32C manifest, into DEST (new or empty),\n" +
			"then writes recovery settings to postgresql.auto.conf and recovery.signal (standby.signal\n" +
			"with --standby) unless --no-recovery. The default restore_command is this walnut's wal-fetch\n" +
			"with the same --envdir/--env-file/--prefix.\n" +
			varsHelp("WALNUT_PREFIX", "WALNUT_PGP_PRIVATE_KEY_FILE", "WALNUT_PGP_PASSPHRASE_FILE", "WALNUT_DOWNLOAD_CONCURRENCY", "WALNUT_RATE_LIMIT"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "restore-command", Usage: "restore_command to write (default: this walnut's wal-fetch %f %p)", Destination: &rec.RestoreCommand},
			&cli.StringFlag{Name: "recovery-target-time", Usage: "recover up to this `TIMESTAMP` (e.g. '2026-11-26 03:00:00+00')", Destination: &rec.TargetTime},
			&cli.StringFlag{Name: "recovery-target-lsn", Usage: "recover up to this `LSN`", Destination: &rec.TargetLSN},
			&cli.StringFlag{Name: "recovery-target-xid", Usage: "recover up to this transaction `ID`", Destination: &rec.TargetXID},
			&cli.StringFlag{Name: "recovery-target-name", Usage: "recover up to the restore point `NAME` (pg_create_restore_point)", Destination: &rec.TargetName},
			&cli.StringFlag{Name: "recovery-target-action", Usage: "pause, promote or shutdown once the target is reached (PostgreSQL's default: pause)", Destination: &rec.TargetAction},
			&cli.StringFlag{Name: "recovery-target-timeline", Usage: "timeline to follow: latest (default), current or an ID", Destination: &rec.TargetTimeline},
			&cli.BoolFlag{Name: "recovery-target-inclusive", Usage: "stop just after the target, or with =false just before it", DefaultText: "PostgreSQL's, after", Destination: &inclusive},
			&cli.BoolFlag{Name: "standby", Usage: "start as a standby (standby.signal) instead of recovering once", Destination: &rec.Standby},
			&cli.BoolFlag{Name: "no-recovery", Usage: "restore the files only; write no recovery settings", Destination: &noRecovery},
			&cli.StringFlag{Name: "archive-mode", Value: "preserve", Usage: "preserve the restored archive_mode, or off: a restore you only inspect then never archives into the source's archive", Destination: &archiveMode},
			&cli.StringSliceFlag{Name: "tablespace-mapping", Usage: "restore the tablespace at `OLDDIR=NEWDIR` (repeatable)", Destination: &mappings},
			&cli.IntFlag{Name: "pool-size", Aliases: []string{"p"}, Usage: "`N` partitions fetched and extracted at once (WAL-E's)", DefaultText: "$WALNUT_DOWNLOAD_CONCURRENCY, else 2", Destination: &poolSize},
			&cli.StringFlag{Name: "restore-spec", Usage: "WAL-E's tablespace spec `FILE` (JSON: {\"tablespaces\": [OID], OID: {\"loc\": DIR, \"link\": \"pg_tblspc/OID\"}}), or SOURCE: where the backup recorded them, the default", Destination: &specFile},
			&cli.BoolFlag{Name: "blind-restore", Usage: "WAL-E's, refused: see --tablespace-mapping", Destination: &blind, Hidden: true},
		},
		Action: func(c *cli.Context) error {
			if err := cliargs.RefuseWALEBackupFetch(c.IsSet); err != nil {
				return usageError(err)
			}
			if c.NArg() != 2 {
				return usageError(fmt.Errorf("backup-fetch: want DEST and NAME|LATEST, got %d arguments", c.NArg()))
			}
			if c.IsSet("recovery-target-inclusive") {
				rec.Inclusive = &inclusive
			}
			rec.TargetTimeGiven = c.IsSet("recovery-target-time")
			rec.TargetLSNGiven = c.IsSet("recovery-target-lsn")
			rec.TargetXIDGiven = c.IsSet("recovery-target-xid")
			rec.TargetNameGiven = c.IsSet("recovery-target-name")
			if noRecovery {
				for _, f := range recoveryFlags {
					if c.IsSet(f) {
						return usageError(fmt.Errorf("backup-fetch: --%s and --no-recovery: --no-recovery writes no recovery settings", f))
					}
				}
			}
			tsMap, err := cliargs.Mapping("tablespace-mapping", "OLDDIR=NEWDIR", mappings.Value())
			if err != nil {
				return usageError(err)
			}
			var spec *restore.WALESpec
			if specFile != "" && specFile != restoreSpecSource {
				if spec, err = restore.ReadWALESpec(specFile); err != nil {
					return usageError(fmt.Errorf("backup-fetch: %w", err))
				}
			}
			opts := restore.Options{Dest: c.Args().Get(0), Name: c.Args().Get(1), Tablespaces: tsMap, Log: g.log}
			switch archiveMode {
			case "preserve":
			case "off":
				opts.ArchiveModeOff = true
			default:
				return usageError(fmt.Errorf("backup-fetch: --archive-mode %q: want preserve or off", archiveMode))
			}
			if !noRecovery {
				if rec.RestoreCommand == "" {
					cmd, err := g.walnutCommand()
					if err != nil {
						return err
					}
					rec.RestoreCommand = cmd + " wal-fetch %f %p"
					prefix, _, _ := g.env.Prefix()
					if names := g.env.OnlyInEnviron(config.StoreVarPrefixes(prefix)...); len(names) > 0 {
						g.log.Warn("restore_command will not see settings that are only in this shell's environment: PostgreSQL starts it with its own; put them in an envdir and pass --envdir, or give --restore-command",
							"variables", strings.Join(names, ","))
					}
				}
				if err := rec.Validate(); err != nil {
					return usageError(fmt.Errorf("backup-fetch: %w", err))
				}
				opts.Recovery = &rec
			}
			conc, err := g.intSetting("WALNUT_DOWNLOAD_CONCURRENCY", 2)
			if err != nil {
				return err
			}
			if c.IsSet("pool-size") {
				if conc, err = poolSizeFlag("backup-fetch", poolSize); err != nil {
					return err
				}
			}
			opts.Concurrency = int(conc)
			rate, err := g.rateLimit()
			if err != nil {
				return err
			}
			if opts.Keyring, err = g.pgpKeyring(); err != nil {
				return err
			}
			store, err := g.openStore(c.Context)
			if err != nil {
				return err
			}
			defer store.Close()
			if spec != nil {
				if opts.Name, err = spec.Mapping(c.Context, store, opts.Keyring, opts.Name, opts.Dest, tsMap); err != nil {
					return fmt.Errorf("backup-fetch: %w", err)
				}
			}
			opts.Store = limitRate(store, rate)
			bar := g.progressFor("restore")
			if bar != nil {
				opts.Progress = bar
			}
			res, err := restore.Run(c.Context, opts)
			bar.Stop() // before the summary on stdout, which may share the terminal
			if err != nil {
				return fmt.Errorf("backup-fetch: %w", err)
			}
			keyNote := !c.IsSet("restore-command") && g.pgp().PrivateKeyInProcessEnv()
			report.WriteRestored(g.stdout, res, opts.Recovery, keyNote, os.Geteuid() == 0) // opts.Recovery: nil with --no-recovery
			return nil
		},
	}
}

// recoveryFlags are the options that become recovery settings.
var recoveryFlags = []string{"restore-command", "recovery-target-time", "recovery-target-lsn", "recovery-target-xid",
	"recovery-target-name", "recovery-target-action", "recovery-target-timeline", "recovery-target-inclusive", "standby"}
