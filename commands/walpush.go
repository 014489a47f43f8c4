package commands

import (
	"fmt"
	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/backup"
)

func walPushCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:        "wal-push",
		Usage:       "archive one WAL file (archive_command = 'walnut wal-push %p')",
		ArgsUsage:   "PATH",
		Description: "Stores a WAL segment, .history, .backup or .partial file; exits 0 only once it is durable.\nPushing the same content again exits 0; other content under an archived name is an error.\n" + varsHelp("WALNUT_PREFIX", "WALNUT_COMPRESSION", "WALNUT_PGP_PUBLIC_KEY_FILE", "WALNUT_LOG_LEVEL"),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError(fmt.Errorf("wal-push: want one PATH, got %d arguments", c.NArg()))
			}
			store, err := g.openStore(c.Context)
			if err != nil {
				return err
			}
			defer store.Close()
			codec, err := g.codec()
			if err != nil {
				return err
			}
			to, err := g.pgpRecipients()
			if err != nil {
				return err
			}
			res, err := backup.WALPush(c.Context, backup.WALPushOptions{Store: store, Codec: codec, Encrypt: to, Path: c.Args().First(), Log: g.log})
			if err != nil {
				return fmt.Errorf("wal-push: %w", err)
			}
			if res.AlreadyStored {
				g.log.Info("already archived with the same content", "key", res.Key)
				return nil
			}
			g.log.Info("archived", "key", res.Key, "bytes", res.Size, "stored_bytes", res.Stored)
			return nil
		},
	}
}
