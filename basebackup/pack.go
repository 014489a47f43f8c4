package basebackup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/tarball"
)

// packer fills tar partitions from the walk, several at once: each worker
// takes files from the shared queue into its own partition until the
// partition is full, so reading, compressing and uploading overlap.
type packer struct {
	store    storage.Store
	enc      archive.Encoding
	name     string
	limit    int64
	log      *slog.Logger
	next     atomic.Int32
	stored   atomic.Int64
	expanded atomic.Int64
	mu       sync.Mutex
	files    []tarball.File
	progress archive.Progress
}

func (p *packer) run(ctx context.Context, dataDir string, tablespaces []archive.Tablespace, versionDir string, workers int) error {
	if p.progress != nil {
		p.progress.Total(estimateSize(ctx, dataDir, tablespaces, versionDir))
	}
	g, ctx := archive.NewGroup(ctx)
	items := make(chan walkItem, 64)
	g.Go(func() error {
		defer close(items)
		w := &walker{versionDir: versionDir, skippedLink: func(name string) {
			p.log.Warn("symlinked directory stored empty; restore its contents yourself", "path", name)
		}, emit: func(it walkItem) error {
			select {
			case items <- it:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}
		return w.walkCluster(ctx, dataDir, tablespaces)
	})
	for range workers {
		g.Go(func() error { return p.worker(ctx, items) })
	}
	return g.Wait()
}

func (p *packer) worker(ctx context.Context, items <-chan walkItem) error {
	for {
		var first walkItem
		var ok bool
		select {
		case first, ok = <-items:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		n := int(p.next.Add(1))
		key := archive.PartitionKey(p.name, n, p.enc.Ext())
		var entries []tarball.File
		stored, err := archive.PutStream(ctx, p.store, key, p.enc, func(w io.Writer) error {
			tw := tarball.NewWriter(w)
			for item, more := first, true; more; {
				f, err := p.add(tw, item)
				if err != nil {
					return err
				}
				if f != nil {
					f.Partition = n
					entries = append(entries, *f)
				}
				if tw.Written() >= p.limit {
					break
				}
				select {
				case item, more = <-items:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return tw.Close()
		})
		if err != nil {
			return fmt.Errorf("partition %s: %w", key, err)
		}
		p.stored.Add(stored)
		p.mu.Lock()
		p.files = append(p.files, entries...)
		p.mu.Unlock()
		p.log.Debug("partition stored", "key", key, "files", len(entries), "stored_bytes", stored)
	}
}

// add writes one walk item; a file that vanished since the walk saw it is
// skipped (nil entry).
func (p *packer) add(tw *tarball.Writer, it walkItem) (*tarball.File, error) {
	var f tarball.File
	var err error
	switch mode := it.Info.Mode(); {
	case mode.IsDir():
		f, err = tw.AddDir(it.Name, mode.Perm(), it.Info.ModTime())
	default:
		in, oerr := os.Open(it.Path)
		if errors.Is(oerr, fs.ErrNotExist) {
			return nil, nil
		}
		if oerr != nil {
			return nil, oerr
		}
		defer in.Close()
		info, serr := in.Stat()
		if serr != nil {
			return nil, serr
		}
		var shrunk bool
		f, shrunk, err = tw.AddFile(it.Name, archive.CountProgress(in, p.progress), info.Size(), info.Mode().Perm(), info.ModTime())
		if shrunk {
			// The server truncated it while we read; WAL replay restores it.
			p.log.Debug("file shrank while read; padded with zeros", "path", it.Path)
		}
		p.expanded.Add(info.Size())
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", it.Path, err)
	}
	return &f, nil
}

// putControl stores backup_label, tablespace_map and global/pg_control in
// their own object, after everything else: a restore that lacks them
// cannot be started by mistake.
func (p *packer) putControl(ctx context.Context, dataDir, label, spcmap string) error {
	now := time.Now()
	var entries []tarball.File
	stored, err := archive.PutStream(ctx, p.store, archive.ControlKey(p.name, p.enc.Ext()), p.enc, func(w io.Writer) error {
		tw := tarball.NewWriter(w)
		add := func(name string, r io.Reader, size int64) error {
			f, _, err := tw.AddFile(name, r, size, 0o600, now)
			if err != nil {
				return err
			}
			f.Partition = archive.ControlPartition
			entries = append(entries, f)
			return nil
		}
		if err := add("backup_label", strings.NewReader(label), int64(len(label))); err != nil {
			return err
		}
		if spcmap != "" {
			if err := add("tablespace_map", strings.NewReader(spcmap), int64(len(spcmap))); err != nil {
				return err
			}
		}
		ctl, err := os.ReadFile(filepath.Join(dataDir, archive.ControlFile))
		if err != nil {
			return err
		}
		if _, err := pgcontrol.ParseControlFile(ctl); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dataDir, archive.ControlFile), err)
		}
		if err := add(archive.ControlFile, strings.NewReader(string(ctl)), int64(len(ctl))); err != nil {
			return err
		}
		return tw.Close()
	})
	if err != nil {
		return fmt.Errorf("store %s: %w", archive.ControlKey(p.name, p.enc.Ext()), err)
	}
	p.stored.Add(stored)
	p.files = append(p.files, entries...)
	return nil
}
