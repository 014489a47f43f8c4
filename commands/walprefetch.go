package commands

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/commands/cliargs"
	"github.com/walnut-pg/walnut/config/size"
	"github.com/walnut-pg/walnut/wal"
)

// maxPrefetch bounds how far wal-fetch fetches ahead, and so the disk the
// prefetch directory can take (64 segments of 16 MiB: 1 GiB).
const maxPrefetch = 64

// prefetchTimeout bounds a background prefetch, so a stuck store never
// leaves a process behind for long.
const prefetchTimeout = 10 * time.Minute

// walPrefetchCommand is the background half of wal-fetch's prefetch; it is
// started by wal-fetch, not by people.
func walPrefetchCommand(g *globals) *cli.Command {
	var count int
	var segSizeText string
	return &cli.Command{
		Name:      "wal-prefetch",
		Hidden:    true,
		ArgsUsage: "NAME DIR",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "count", Value: defaultPrefetch, Destination: &count},
			&cli.StringFlag{Name: "segment-size", Usage: "WAL segment size, e.g. 16MiB", Destination: &segSizeText},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 || count < 1 || count > maxPrefetch {
				return usageError(fmt.Errorf("wal-prefetch: want NAME DIR and --count 1 to %d", maxPrefetch))
			}
			var segSize uint64
			if segSizeText != "" {
				n, err := size.Parse(segSizeText)
				if err != nil {
					return usageError(fmt.Errorf("wal-prefetch: --segment-size %q: %w", segSizeText, err))
				}
				segSize = uint64(n)
			}
			ctx, cancel := context.WithTimeout(c.Context, prefetchTimeout)
			defer cancel()
			store, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			kr, err := g.pgpKeyring()
			if err != nil {
				return err
			}
			res, err := wal.Prefetch(ctx, wal.PrefetchOptions{
				FetchOptions: wal.FetchOptions{Store: store, Name: c.Args().Get(0), Keyring: kr, Log: g.log},
				Dir:          c.Args().Get(1),
				Count:        count,
				SegmentSize:  segSize,
			})
			if err != nil {
				return fmt.Errorf("wal-prefetch: %w", err)
			}
			g.log.Debug("prefetched", "after", c.Args().Get(0), "fetched", res.Fetched, "present", res.Present, "missing", res.Missing, "failed", res.Failed)
			return nil
		},
	}
}

// startPrefetch starts wal-prefetch in the background with this run's
// configuration and does not wait for it. It runs in a session of its own
// so PostgreSQL, which waits for restore_command and signals its process
// group, neither waits for nor kills it; it ends by itself.
func (g *globals) startPrefetch(name, dir string, count int, segSize uint64) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	args, err := g.configArgs()
	if err != nil {
		return err
	}
	args = append(args, "--log-format", g.logFormat)
	if g.terse {
		args = append(args, "--terse")
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	args = append(args, "wal-prefetch", "--count", strconv.Itoa(count), "--segment-size", strconv.FormatUint(segSize, 10), name, absDir)
	return cliargs.StartDetached(exe, args, g.environ, g.stderr)
}
