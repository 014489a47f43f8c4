package restore

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/walnut-pg/walnut/archive"
)

// syncWorkers is how many fsyncs run at once at the end of a restore. They
// wait on the disk, not the CPU, and the filesystem commits concurrent
// fsyncs together, so more than the cores helps.
const syncWorkers = 8

// syncAll makes every file and directory under roots durable, several at
// once. A restore writes its data partitions without fsync (but with
// writeback started early) and calls this before pg_control and
// backup_label go in: per-file fsyncs as each file completes stall the
// workers that should be decoding, and cost one filesystem commit each.
func syncAll(ctx context.Context, roots []*os.Root) error {
	type item struct {
		root *os.Root
		name string
	}
	items := make(chan item)
	g, gctx := archive.NewGroup(ctx)
	g.Go(func() error {
		defer close(items)
		for _, r := range roots {
			err := fs.WalkDir(r.FS(), ".", func(name string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.Type().IsRegular() && !d.IsDir() {
					return nil // symlinks: their directory's fsync covers them
				}
				select {
				case items <- item{r, name}:
					return nil
				case <-gctx.Done():
					return gctx.Err()
				}
			})
			if err != nil {
				return fmt.Errorf("sync restore %s: %w", r.Name(), err)
			}
		}
		return nil
	})
	for range syncWorkers {
		g.Go(func() error {
			for it := range items {
				if err := syncOne(it.root, it.name); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

func syncOne(r *os.Root, name string) error {
	f, err := r.Open(name)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", filepath.Join(r.Name(), name), err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", filepath.Join(r.Name(), name), err)
	}
	return nil
}
