package commands

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/config"
	"github.com/walnut-pg/walnut/receive"
)

func walReceiveCommand(g *globals) *cli.Command {
	var (
		dsn, slot, dir string
		interval       time.Duration
		synchronous    bool
	)
	return &cli.Command{
		Name:  "wal-receive",
		Usage: "stream WAL from a server over a replication connection into the archive (a long-running service)",
		Description: "Connects with a REPLICATION role (PG* variables or --dsn), keeps a physical replication slot\n" +
			"(--slot), and stores every whole segment as wal-push would. The segment in progress is stored\n" +
			"as <segment>.partial every --partial-interval; wal-fetch serves it when nothing later is archived.\n" +
			"With --synchronous the server hears a flush position only for WAL stored in the archive: list\n" +
			"walnut (its application_name) in synchronous_standby_names for a recovery point of zero.\n" +
			"A dropped connection is retried; SIGTERM stores what has arrived and exits 0.\n" +
			varsHelp("WALNUT_PREFIX", "WALNUT_COMPRESSION", "WALNUT_PGP_PUBLIC_KEY_FILE", "WALNUT_LOG_LEVEL", "PG*"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dsn", Usage: "connection string or URL (default: the PG* variables); no password in it: use PGPASSWORD or ~/.pgpass", Destination: &dsn},
			&cli.StringFlag{Name: "slot", Value: "walnut", Usage: "physical replication slot, created if missing", Destination: &slot},
			&cli.StringFlag{Name: "dir", Usage: "work directory for the segment being written (default $STATE_DIRECTORY, set by systemd's StateDirectory=)", Destination: &dir},
			&cli.DurationFlag{Name: "partial-interval", Value: 10 * time.Second, Usage: "how often the segment in progress is stored", Destination: &interval},
			&cli.BoolFlag{Name: "synchronous", Usage: "store the segment in progress as soon as WAL arrives, and acknowledge only stored WAL", Destination: &synchronous},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageError(fmt.Errorf("wal-receive: takes no arguments, got %d", c.NArg()))
			}
			if interval <= 0 {
				return usageError(fmt.Errorf("wal-receive: --partial-interval %s: want a positive duration", interval))
			}
			if dir == "" {
				// systemd may list several directories, colon-separated.
				dir, _, _ = strings.Cut(g.env.Getenv("STATE_DIRECTORY"), ":")
			}
			if dir == "" {
				return usageError(errors.New("wal-receive: no work directory: give --dir (or run under systemd with StateDirectory=)"))
			}
			if dsn == "" {
				dsn = g.env.PGConnString()
			} else if config.DSNHasPassword(dsn) {
				return usageError(errors.New("wal-receive: --dsn holds a password, which argv shows to every user: use PGPASSWORD (an envdir) or ~/.pgpass"))
			}
			store, err := g.openStore(c.Context)
			if err != nil {
				return err
			}
			defer store.Close()
			codec, to, err := g.encoding(c.Context)
			if err != nil {
				return err
			}
			err = receive.Run(c.Context, receive.Options{
				Store: store, Codec: codec, Encrypt: to,
				ConnString: dsn, Slot: slot, Dir: dir,
				PartialInterval: interval, Synchronous: synchronous,
				Log: g.log,
			})
			if errors.Is(err, receive.ErrSetup) {
				return usageError(fmt.Errorf("wal-receive: %w", err))
			}
			if err != nil {
				return fmt.Errorf("wal-receive: %w", err)
			}
			return nil
		},
	}
}
