package basebackup

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
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
	// chunk is the size above which a file is stored in chunks that any
	// worker may pack, so one large relation file keeps every core busy.
	chunk    int64
	mu       sync.Mutex
	files    []tarball.File
	chunked  map[string]*tarball.File // by tar name: chunked files, chunks arriving
	progress archive.Progress
	// delta, when set, stores relation files as the pages changed since
	// this LSN, the base backup's start (see delta.go).
	delta *pgcontrol.LSN
	paged []archive.PagedFile
	// baseDirs are the base's database directories (global included);
	// dbDirs this backup's, gathered by the walk.
	baseDirs map[string]bool
	dbDirs   []string
}

func (p *packer) run(ctx context.Context, dataDir string, tablespaces []archive.Tablespace, versionDir string, workers int) error {
	if p.progress != nil {
		p.progress.Total(estimateSize(ctx, dataDir, tablespaces, versionDir))
	}
	return p.runFeed(ctx, workers, func(ctx context.Context, send func(walkItem) error) error {
		w := &walker{versionDir: versionDir, skippedLink: func(name string) {
			p.log.Warn("symlinked directory stored empty; restore its contents yourself", "path", name)
		}, emit: func(it walkItem) error {
			size := it.Info.Size()
			if p.delta != nil && it.Info.Mode().IsRegular() && pagedCandidate(it.Name) && p.baseDirs[path.Dir(it.Name)] {
				blocks, whole, err := changedPages(it.Path, size, *p.delta)
				if err != nil {
					return fmt.Errorf("%s: %w", it.Path, err)
				}
				if !whole {
					if p.progress != nil {
						p.progress.Add(size) // read whole by the scan, so the bar ends full
					}
					it.Pages = blocks
					return send(it)
				}
			}
			if p.chunk <= 0 || !it.Info.Mode().IsRegular() || size <= p.chunk {
				return send(it)
			}
			// The size the walk saw is the file's size in the backup, as
			// AddFile cuts a file that grows: the growth is in the WAL.
			p.addChunked(it)
			for off := int64(0); off < size; off += p.chunk {
				c := it
				c.Chunk = &chunkItem{Offset: off, Size: min(p.chunk, size-off)}
				if err := send(c); err != nil {
					return err
				}
			}
			return nil
		}}
		return w.walkCluster(ctx, dataDir, tablespaces)
	})
}

// runFeed packs what feed sends with the given number of workers; the
// local walk and the replication stream (remote.go) are both feeds.
func (p *packer) runFeed(ctx context.Context, workers int, feed func(context.Context, func(walkItem) error) error) error {
	g, ctx := archive.NewGroup(ctx)
	items := make(chan walkItem, 64)
	p.chunked = map[string]*tarball.File{}
	send := func(it walkItem) error {
		// Every backup records its database directories, so that a delta
		// over it stores whole the files of a database created since.
		if it.Info.IsDir() && isDatabaseDir(it.Name) {
			p.dbDirs = append(p.dbDirs, it.Name)
		}
		select {
		case items <- it:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.Go(func() error {
		defer close(items)
		return feed(ctx, send)
	})
	for range workers {
		g.Go(func() error { return p.worker(ctx, items) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return p.finishChunked()
}

// addChunked records a file whose chunks are about to be sent.
func (p *packer) addChunked(it walkItem) {
	p.mu.Lock()
	p.chunked[it.Name] = &tarball.File{Path: it.Name, Type: tarball.TypeFile, Size: it.Info.Size(),
		Mode: it.Info.Mode().Perm(), ModTime: it.Info.ModTime().Truncate(time.Second)}
	p.mu.Unlock()
}

// finishChunked adds the chunked files to the manifest, their chunks in
// offset order and their CRC32C combined from the chunks'.
func (p *packer) finishChunked() error {
	for _, f := range p.chunked {
		slices.SortFunc(f.Chunks, func(a, b tarball.Chunk) int { return cmp.Compare(a.Offset, b.Offset) })
		f.CRC32C = 0
		for _, c := range f.Chunks {
			f.CRC32C = tarball.CombineCRC32C(f.CRC32C, c.CRC32C, c.Size)
		}
		if err := tarball.CheckChunks(*f); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err) // a bug: every chunk was stored
		}
		p.files = append(p.files, *f)
	}
	return nil
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
				f, err := p.add(tw, item, n)
				if item.Release != nil {
					item.Release()
				}
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

// add writes one walk item into partition n; a file that vanished since
// the walk saw it is skipped (nil entry). A chunk is recorded with its
// file, not returned.
func (p *packer) add(tw *tarball.Writer, it walkItem, n int) (*tarball.File, error) {
	if it.Chunk != nil {
		return nil, p.addChunk(tw, it, n)
	}
	if it.Pages != nil {
		return nil, p.addPaged(tw, it, n)
	}
	var f tarball.File
	var err error
	switch mode := it.Info.Mode(); {
	case mode.IsDir():
		f, err = tw.AddDir(it.Name, mode.Perm(), it.Info.ModTime())
	case it.Data != nil:
		f, _, err = tw.AddFile(it.Name, archive.CountProgress(bytes.NewReader(it.Data), p.progress), int64(len(it.Data)), mode.Perm(), it.Info.ModTime())
		p.expanded.Add(int64(len(it.Data)))
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

// addChunk stores one chunk of a large file. A file that vanished or
// shrank since the walk is stored as zeros where its bytes are gone, like
// a file that shrinks while AddFile reads it: the other chunks may be
// stored already, and WAL replay removes or rewrites the file anyway.
func (p *packer) addChunk(tw *tarball.Writer, it walkItem, n int) error {
	var r io.Reader = eofReader{}
	var in *os.File
	var err error
	if it.Data != nil {
		r = archive.CountProgress(bytes.NewReader(it.Data), p.progress)
	} else {
		in, err = os.Open(it.Path)
	}
	switch {
	case it.Data != nil:
	case err == nil:
		defer in.Close()
		r = archive.CountProgress(io.NewSectionReader(in, it.Chunk.Offset, it.Chunk.Size), p.progress)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	c, shrunk, err := tw.AddChunk(it.Name, r, it.Chunk.Offset, it.Chunk.Size, it.Info.Mode().Perm(), it.Info.ModTime())
	if err != nil {
		return fmt.Errorf("%s: %w", it.Path, err)
	}
	if shrunk {
		p.log.Debug("file shrank or vanished while read; chunk padded with zeros", "path", it.Path, "offset", it.Chunk.Offset)
	}
	c.Partition = n
	p.expanded.Add(it.Chunk.Size)
	p.mu.Lock()
	f := p.chunked[it.Name]
	f.Chunks = append(f.Chunks, c)
	p.mu.Unlock()
	return nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// putControl stores backup_label, tablespace_map and global/pg_control in
// their own object, after everything else: a restore that lacks them
// cannot be started by mistake.
func (p *packer) putControl(ctx context.Context, label, spcmap string, ctl []byte) error {
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
		if _, err := pgcontrol.ParseControlFile(ctl); err != nil {
			return fmt.Errorf("%s: %w", archive.ControlFile, err)
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
