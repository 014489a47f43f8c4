package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/wal"
)

// defaultPoolSize is measured, not guessed: see bench/wal.sh and the
// README's performance section.
const defaultPoolSize = 4

func walPushCommand(g *globals) *cli.Command {
	var poolSize int
	return &cli.Command{
		Name:      "wal-push",
		Usage:     "archive one WAL file (archive_command = 'walnut wal-push %p')",
		ArgsUsage: "PATH",
		Description: "Stores a WAL segment, .history, .backup or .partial file; exits 0 only once it is durable.\n" +
			"Pushing the same content again exits 0; other content under an archived name is an error.\n" +
			"Under PostgreSQL (PATH in pg_wal) it also stores up to --pool-size - 1 of the next files\n" +
			"marked ready in pg_wal/archive_status, and PostgreSQL's later calls for those return at once.\n" +
			varsHelp("WALNUT_PREFIX", "WALNUT_COMPRESSION", "WALNUT_PGP_PUBLIC_KEY_FILE", "WALNUT_WAL_PUSH_POOL_SIZE", "WALNUT_LOG_LEVEL"),
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "pool-size", Aliases: []string{"p"}, Usage: "files stored at once (default $WALNUT_WAL_PUSH_POOL_SIZE, else 4)", Destination: &poolSize},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError(fmt.Errorf("wal-push: want one PATH, got %d arguments", c.NArg()))
			}
			if !c.IsSet("pool-size") {
				n, err := g.intSetting("WALNUT_WAL_PUSH_POOL_SIZE", defaultPoolSize)
				if err != nil {
					return err
				}
				poolSize = int(n)
			}
			if poolSize < 1 || poolSize > 64 {
				return usageError(fmt.Errorf("wal-push: --pool-size %d: want 1 to 64", poolSize))
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
			codec, to, err := g.encoding(c.Context)
			if err != nil {
				return err
			}
			res, err := wal.PushPool(c.Context, wal.PoolOptions{
				PushOptions: wal.PushOptions{Store: store, Codec: codec, Encrypt: to, Path: c.Args().First(), Log: g.log},
				PoolSize:    poolSize,
				ArchiveID:   prefix,
			})
			if err != nil {
				return fmt.Errorf("wal-push: %w", err)
			}
			switch {
			case res.FromMarker:
				g.log.Info("already archived ahead with the same content", "key", res.Key)
			case res.AlreadyStored:
				g.log.Info("already archived with the same content", "key", res.Key)
			default:
				g.log.Info("archived", "key", res.Key, "bytes", res.Size, "stored_bytes", res.Stored)
			}
			return nil
		},
	}
}
