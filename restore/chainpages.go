package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/tarball"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// pageApplier writes the paged entries of one delta into the files the
// chain before it restored, from several partitions at once (each file's
// entry is in one partition only).
type pageApplier struct {
	r     *restorer
	mu    sync.Mutex
	files map[string]*pagedState // by tar entry name
}

type pagedState struct {
	f    archive.PagedFile
	seen bool
	done bool
}

func newPageApplier(r *restorer, paged []archive.PagedFile) *pageApplier {
	a := &pageApplier{r: r, files: make(map[string]*pagedState, len(paged))}
	for _, p := range paged {
		a.files[p.Path+archive.PagedSuffix] = &pagedState{f: p}
	}
	return a
}

// take is the extractor's hook for entries its manifest does not list.
func (a *pageApplier) take(name string, size int64, rd io.Reader) (bool, error) {
	a.mu.Lock()
	st, ok := a.files[name]
	seen := ok && st.seen
	if ok {
		st.seen = true
	}
	a.mu.Unlock()
	switch {
	case !ok:
		return false, nil
	case seen:
		return true, fmt.Errorf("%w: appears twice in the backup", tarball.ErrCorrupt)
	}
	if err := a.r.applyPages(st.f, size, rd); err != nil {
		return true, err
	}
	a.mu.Lock()
	st.done = true
	a.mu.Unlock()
	return true, nil
}

// finish checks that every paged entry was applied and gives each file
// its size, mode and mtime.
func (a *pageApplier) finish() error {
	for _, st := range a.files {
		p := st.f
		if !st.done {
			return fmt.Errorf("%w: %s: its changed pages (partition %d) are missing", tarball.ErrCorrupt, p.Path, p.Partition)
		}
		root, rel := a.r.locate(p.Path)
		f, err := root.OpenFile(rel, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		// A file that shrank since the chain's previous backup (TRUNCATE
		// of a few pages, VACUUM) comes out at the delta's size.
		err = f.Truncate(p.Size)
		if err == nil {
			err = f.Chmod(p.Mode)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = root.Chtimes(rel, p.ModTime, p.ModTime)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.Path, err)
		}
	}
	return nil
}

// applyPages writes the records of p's entry, size bytes read from rd,
// into the file at their blocks, checking the entry's CRC32C.
func (r *restorer) applyPages(p archive.PagedFile, size int64, rd io.Reader) (err error) {
	if size != p.EntrySize() {
		return fmt.Errorf("%w: archive has %d bytes, manifest %d pages (%d bytes)", tarball.ErrCorrupt, size, p.Pages, p.EntrySize())
	}
	root, rel := r.locate(p.Path)
	out, err := root.OpenFile(rel, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the delta stores changed pages of %s, which the backups before it lack: the chain is inconsistent", p.Path)
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	var rec [archive.PageRecord]byte
	var crc uint32
	for range p.Pages {
		if _, err := io.ReadFull(rd, rec[:]); err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		crc = crc32.Update(crc, castagnoli, rec[:])
		off := int64(binary.LittleEndian.Uint32(rec[:4])) * pgcontrol.PageSize
		if off+pgcontrol.PageSize > p.Size {
			return fmt.Errorf("%w: page at offset %d lies beyond the file's %d bytes", tarball.ErrCorrupt, off, p.Size)
		}
		if _, err := out.WriteAt(rec[4:], off); err != nil {
			return err
		}
	}
	if crc != p.CRC32C {
		return fmt.Errorf("%w: CRC32C %08x, manifest %08x", tarball.ErrCorrupt, crc, p.CRC32C)
	}
	return nil
}
