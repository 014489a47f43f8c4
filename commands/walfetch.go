package commands

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/wal"
)

// defaultPrefetch is measured, not guessed: see bench/wal.sh and the
// README's performance section.
const defaultPrefetch = 8

func walFetchCommand(g *globals) *cli.Command {
	var prefetch int
	return &cli.Command{
		Name:      "wal-fetch",
		Usage:     "restore one WAL file (restore_command = 'walnut wal-fetch %f %p')",
		ArgsUsage: "NAME DEST",
		Description: "Writes the archived file NAME to DEST atomically.\n" +
			"Exit codes: 0 fetched; 66 NAME is not in the archive; any other failure, configuration\n" +
			"errors included (flags, --envdir, --env-file), exits 200 during\n" +
			"archive recovery (so PostgreSQL stops rather than ending recovery early) and 1 in standby\n" +
			"mode (standby.signal in the working directory, so PostgreSQL tries again).\n" +
			"Under PostgreSQL (DEST in pg_wal) a background process fetches the next --prefetch segments\n" +
			"into pg_wal/.walnut/prefetch, and later calls take them from there.\n" +
			varsHelp("WALNUT_PREFIX", "WALNUT_PGP_PRIVATE_KEY_FILE", "WALNUT_PGP_PASSPHRASE_FILE", "WALNUT_PREFETCH", "WALNUT_LOG_LEVEL"),
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "prefetch", Aliases: []string{"p"}, Usage: "segments fetched ahead, 0 for none (default $WALNUT_PREFETCH, else 8)", Destination: &prefetch},
		},
		Action: func(c *cli.Context) error {
			if !c.IsSet("prefetch") {
				n, err := g.env.Count("WALNUT_PREFETCH", defaultPrefetch)
				if err != nil {
					n = 0 // a bad setting must not stop recovery; it only turns prefetch off
					g.log.Warn("prefetch off", "err", err)
				}
				prefetch = int(n)
			}
			err := walFetch(c, g, min(max(prefetch, 0), maxPrefetch))
			switch {
			case err == nil:
				return nil
			case errors.Is(err, storage.ErrNotFound):
				return withCode(ExitWALNotFound, fmt.Errorf("wal-fetch: %s is not in the archive", c.Args().Get(0)))
			default:
				return withCode(walFetchFailure(), err)
			}
		},
	}
}

func walFetch(c *cli.Context, g *globals, prefetch int) error {
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
	opts := wal.FetchOptions{Store: store, Name: name, Dest: dest, Keyring: kr, Log: g.log}
	dir, underServer := wal.PrefetchDir(dest)
	if prefetch == 0 || !underServer {
		if err := wal.Fetch(c.Context, opts); err != nil {
			return fmt.Errorf("wal-fetch: %w", err)
		}
		g.log.Info("fetched", "name", name)
		return nil
	}
	prefetched, err := wal.FetchPrefetched(c.Context, opts, dir, wal.PrefetchWait)
	if err != nil {
		return fmt.Errorf("wal-fetch: %w", err)
	}
	g.log.Info("fetched", "name", name, "prefetched", prefetched)
	if !pgcontrol.IsWALFileName(name) {
		return nil
	}
	if segSize, err := wal.SegmentSize(dest); err == nil && wal.PrefetchWanted(dir, name, segSize, prefetch) {
		if err := g.startPrefetch(name, dir, prefetch, segSize); err != nil {
			g.log.Warn("cannot start prefetching", "err", err)
		}
	}
	return nil
}

// restoreCommand reports whether the command named is run by PostgreSQL as
// restore_command (wal-fetch), or by wal-fetch for it (wal-prefetch): its
// every failure but "not in the archive" exits with walFetchFailure.
func restoreCommand(name string) bool {
	return name == "wal-fetch" || name == "wal-prefetch"
}

// walFetchFailure is the exit code of a wal-fetch that failed for any
// reason but the file's absence: above 125 during archive recovery, so
// PostgreSQL stops instead of ending recovery early; 1 in standby mode, so
// it tries again.
func walFetchFailure() int {
	if inStandbyMode() {
		return ExitFailure
	}
	return ExitWALFetchFatal
}

// inStandbyMode tells standby mode from archive recovery: PostgreSQL runs
// restore_command in the data directory, where standby.signal marks a
// standby.
func inStandbyMode() bool {
	_, err := os.Stat("standby.signal")
	return err == nil
}
