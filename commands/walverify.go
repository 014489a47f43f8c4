package commands

import (
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/commands/report"
	"github.com/walnut-pg/walnut/verify"
	"github.com/walnut-pg/walnut/wal"
)

func walVerifyCommand(g *globals) *cli.Command {
	var (
		asJSON      bool
		timeline    uint
		pushMissing string
	)
	return &cli.Command{
		Name:  "wal-verify",
		Usage: "check that the archive's WAL has no gaps from the oldest backup to the newest segment",
		Description: "Lists the archive's WAL (without downloading segments; backup-verify decodes those) and follows it\n" +
			"from each backup's start segment along the timelines its recovery would take (the newest, found\n" +
			"through the history files as PostgreSQL finds it, or --timeline) up to the newest segment there.\n" +
			"Prints every gap: a missing segment, a history file that is missing or unreadable, a name archived\n" +
			"twice; and how far each backup can be restored. Exits 1 on any gap.\n" +
			"--push-missing PGDATA then stores, through wal-push, the missing files still in that cluster's\n" +
			"pg_wal (segments only once PostgreSQL has finished them), and checks again.\n" +
			varsHelp("WALNUT_PREFIX", "WALNUT_PGP_PRIVATE_KEY_FILE", "WALNUT_PGP_PASSPHRASE_FILE", "WALNUT_COMPRESSION", "WALNUT_PGP_PUBLIC_KEY_FILE"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON", Destination: &asJSON},
			&cli.UintFlag{Name: "timeline", Usage: "follow timeline `N` instead of the newest", Destination: &timeline},
			&cli.StringFlag{Name: "push-missing", Usage: "wal-push the missing files still in `PGDATA`'s pg_wal", Destination: &pushMissing},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError(fmt.Errorf("wal-verify: takes no arguments, got %q", c.Args().Slice()))
			}
			if timeline > 1<<32-1 {
				return usageError(fmt.Errorf("wal-verify: --timeline %d is not a timeline ID", timeline))
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
			opts := verify.WALOptions{Store: store, Keyring: kr, Timeline: uint32(timeline), Log: g.log}
			rep, err := verify.WAL(c.Context, opts)
			if err != nil {
				return fmt.Errorf("wal-verify: %w", err)
			}
			var pushed []string
			if pushMissing != "" {
				paths, notes, err := verify.PushCandidates(pushMissing, rep)
				if err != nil {
					return fmt.Errorf("wal-verify --push-missing: %w", err)
				}
				// wal-push's own path, so pushed files are checked,
				// named and encoded as PostgreSQL's archive_command
				// would have stored them.
				codec, to, err := g.encoding(c.Context)
				if err != nil {
					return err
				}
				for _, p := range paths {
					res, err := wal.Push(c.Context, wal.PushOptions{Store: store, Codec: codec, Encrypt: to, Path: p, Log: g.log})
					if err != nil {
						return fmt.Errorf("wal-verify --push-missing: %w", err)
					}
					g.log.Info("pushed a missing file", "key", res.Key, "already_stored", res.AlreadyStored)
					pushed = append(pushed, filepath.Base(p))
				}
				for _, n := range notes {
					g.log.Warn(n)
				}
				if len(pushed) > 0 {
					if rep, err = verify.WAL(c.Context, opts); err != nil {
						return fmt.Errorf("wal-verify: %w", err)
					}
				}
			}
			if err := report.WriteWAL(g.stdout, rep, pushed, asJSON); err != nil {
				return err
			}
			if len(rep.Problems) > 0 {
				return withCode(ExitFailure, fmt.Errorf("wal-verify: %d gaps or problems", len(rep.Problems)))
			}
			return nil
		},
	}
}
