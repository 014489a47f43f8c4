package commands

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/backup"
	"github.com/walnut-pg/walnut/storage"
)

func walFetchCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:      "wal-fetch",
		Usage:     "restore one WAL file (restore_command = 'walnut wal-fetch %f %p')",
		ArgsUsage: "NAME DEST",
		Description: "Writes the archived file NAME to DEST atomically.\n" +
			"Exit codes: 0 fetched; 66 NAME is not in the archive; any other failure exits 200 during\n" +
			"archive recovery (so PostgreSQL stops rather than ending recovery early) and 1 in standby\n" +
			"mode (standby.signal in the working directory, so PostgreSQL tries again).\n" +
			varsHelp("WALNUT_PREFIX", "WALNUT_PGP_PRIVATE_KEY_FILE", "WALNUT_PGP_PASSPHRASE_FILE", "WALNUT_LOG_LEVEL"),
		Action: func(c *cli.Context) error {
			err := walFetch(c, g)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, storage.ErrNotFound):
				return withCode(ExitWALNotFound, fmt.Errorf("wal-fetch: %s is not in the archive", c.Args().Get(0)))
			case inStandbyMode():
				return withCode(ExitFailure, err)
			default:
				return withCode(ExitWALFetchFatal, err)
			}
		},
	}
}

func walFetch(c *cli.Context, g *globals) error {
	if c.NArg() != 2 {
		return fmt.Errorf("wal-fetch: want NAME and DEST, got %d arguments", c.NArg())
	}
	store, err := g.openStore(c.Context)
	if err != nil {
		return err
	}
	defer store.Close()
	kr, err := g.pgpKeyring()
	if err != nil {
		return err
	}
	name, dest := c.Args().Get(0), c.Args().Get(1)
	if err := backup.WALFetch(c.Context, backup.WALFetchOptions{Store: store, Name: name, Dest: dest, Keyring: kr, Log: g.log}); err != nil {
		return fmt.Errorf("wal-fetch: %w", err)
	}
	g.log.Info("fetched", "name", name)
	return nil
}

// inStandbyMode tells standby mode from archive recovery: PostgreSQL runs
// restore_command in the data directory, where standby.signal marks a
// standby.
func inStandbyMode() bool {
	_, err := os.Stat("standby.signal")
	return err == nil
}
