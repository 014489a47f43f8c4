package commands

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/basebackup"
	"github.com/walnut-pg/walnut/commands/cliargs"
	"github.com/walnut-pg/walnut/config"
)

func backupPushCommand(g *globals) *cli.Command {
	var (
		spread, whileOffline, delta, remote bool
		archiveTimeout                      time.Duration
		poolSize                            int
		readRate, dsn                       string
	)
	return &cli.Command{
		Name:      "backup-push",
		Usage:     "take a base backup of the running server whose data directory is PGDATA",
		ArgsUsage: "PGDATA | --remote",
		Description: "Non-exclusive base backup over one libpq session, streamed as tar partitions; the backup\n" +
			"is listed only once every part and the WAL it needs are stored.\n" +
			varsHelp("WALNUT_PREFIX", "WALNUT_COMPRESSION", "WALNUT_PGP_PUBLIC_KEY_FILE", "WALNUT_UPLOAD_CONCURRENCY", "WALNUT_RATE_LIMIT", "WALNUT_PARTITION_SIZE", "WALNUT_CHUNK_SIZE", "WALNUT_DELTA_MAX_STEPS", "PG*"),
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "archive-timeout", Value: basebackup.DefaultArchiveTimeout, Usage: "how long to wait for the WAL the backup needs to reach the archive before failing", Destination: &archiveTimeout},
			&cli.BoolFlag{Name: "delta", Usage: "store only the pages changed since the newest backup (a full backup after WALNUT_DELTA_MAX_STEPS deltas)", Destination: &delta},
			&cli.BoolFlag{Name: "remote", Usage: "take the backup over the replication protocol (PG* variables, a REPLICATION role), without PGDATA", Destination: &remote},
			&cli.StringFlag{Name: "dsn", Usage: "with --remote: connection string or URL (default: the PG* variables); no password in it", Destination: &dsn},
			&cli.BoolFlag{Name: "spread-checkpoint", Usage: "let the starting checkpoint spread over checkpoint_completion_target instead of forcing it", Destination: &spread},
			&cli.IntFlag{Name: "pool-size", Aliases: []string{"p"}, Usage: "`N` partitions compressed and uploaded at once (WAL-E's)", DefaultText: "$WALNUT_UPLOAD_CONCURRENCY, else 2", Destination: &poolSize},
			&cli.StringFlag{Name: "cluster-read-rate-limit", Usage: "WAL-E's, refused: see WALNUT_RATE_LIMIT", Destination: &readRate, Hidden: true},
			&cli.BoolFlag{Name: "while-offline", Usage: "WAL-E's, refused", Destination: &whileOffline, Hidden: true},
		},
		Action: func(c *cli.Context) error {
			if err := cliargs.RefuseWALEBackupPush(c.IsSet); err != nil {
				return usageError(err)
			}
			if remote && c.NArg() != 0 {
				return usageError(fmt.Errorf("backup-push --remote takes no PGDATA (got %q): the files come over the replication connection", c.Args().First()))
			}
			if remote && delta {
				return usageError(errors.New("backup-push: --delta reads page headers in PGDATA, which --remote has no access to: take delta backups on the database host"))
			}
			if dsn != "" && (!remote || config.DSNHasPassword(dsn)) {
				return usageError(errors.New("backup-push: --dsn goes with --remote only, and holds no password (argv is public: use PGPASSWORD or ~/.pgpass)"))
			}
			if dsn == "" {
				dsn = g.env.PGConnString()
			}
			if !remote && c.NArg() != 1 {
				return usageError(fmt.Errorf("backup-push: want one PGDATA, got %d arguments", c.NArg()))
			}
			codec, to, err := g.encoding(c.Context)
			if err != nil {
				return err
			}
			part, err := g.sizeSetting("WALNUT_PARTITION_SIZE", basebackup.DefaultPartitionSize)
			if err != nil {
				return err
			}
			chunk, err := g.sizeSetting("WALNUT_CHUNK_SIZE", basebackup.DefaultChunkSize)
			if err != nil {
				return err
			}
			if chunk < basebackup.MinChunkSize {
				return usageError(fmt.Errorf("WALNUT_CHUNK_SIZE=%d: want at least 1MiB", chunk))
			}
			conc, err := g.intSetting("WALNUT_UPLOAD_CONCURRENCY", 2)
			if err != nil {
				return err
			}
			if c.IsSet("pool-size") {
				if conc, err = poolSizeFlag("backup-push", poolSize); err != nil {
					return err
				}
			}
			steps, err := g.intSetting("WALNUT_DELTA_MAX_STEPS", basebackup.DefaultDeltaMaxSteps)
			if err == nil && steps < 1 {
				err = usageError(fmt.Errorf("WALNUT_DELTA_MAX_STEPS=%d: want at least 1", steps))
			}
			if err != nil {
				return err
			}
			rate, err := g.rateLimit()
			if err != nil {
				return err
			}
			store, err := g.openStore(c.Context)
			if err != nil {
				return err
			}
			defer store.Close()
			opts := basebackup.Options{
				Store:          limitRate(store, rate),
				Codec:          codec,
				Encrypt:        to,
				DataDir:        c.Args().First(),
				ConnString:     dsn,
				FastCheckpoint: !spread,
				PartitionSize:  part,
				ChunkSize:      chunk,
				Concurrency:    int(conc),
				ArchiveTimeout: archiveTimeout,
				Log:            g.log,
				Delta:          delta,
				DeltaMaxSteps:  int(steps),
			}
			bar := g.progressFor("backup")
			if bar != nil {
				opts.Progress = bar
			}
			push := basebackup.Push
			if remote {
				push = basebackup.PushRemote
			}
			sn, err := push(c.Context, opts)
			bar.Stop() // before the name on stdout, which may share the terminal
			if err != nil {
				return fmt.Errorf("backup-push: %w", err)
			}
			fmt.Fprintln(g.stdout, sn.Name)
			return nil
		},
	}
}
