package basebackup

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/bits"
	"os"
	"path"
	"strings"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/tarball"
)

// DefaultDeltaMaxSteps is how many deltas a chain holds before the next
// backup-push --delta takes a full backup: each step is one more backup a
// restore must fetch, and one more that must survive for the chain to.
const DefaultDeltaMaxSteps = 6

// chooseBase picks the backup a delta is taken against: the newest
// complete backup of this cluster. It returns nil, with the reason
// logged, when the delta must be a full backup instead; it refuses when
// the newest backup's chain is broken, as a delta over it could never be
// restored.
func chooseBase(ctx context.Context, s storage.Store, sn *archive.Sentinel, maxSteps int, log *slog.Logger) (*archive.Sentinel, error) {
	all, err := archive.ListBackups(ctx, s)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*archive.Sentinel, len(all))
	var base *archive.Sentinel
	for _, b := range all {
		if b.IsWALE() || b.SystemIdentifier != sn.SystemIdentifier {
			continue
		}
		byName[b.Name] = b
		base = b // oldest first: the last one is the newest
	}
	switch {
	case base == nil:
		log.Info("delta: no earlier backup of this cluster; taking a full backup")
		return nil, nil
	case base.Timeline != sn.Timeline:
		// Pages written on another timeline may carry LSNs older than the
		// base's start and still differ from it.
		log.Info("delta: the newest backup is on another timeline; taking a full backup", "backup", base.Name, "its_timeline", base.Timeline, "timeline", sn.Timeline)
		return nil, nil
	}
	for b := base; b.IsDelta(); {
		next, ok := byName[b.DeltaBase]
		if !ok {
			return nil, fmt.Errorf("delta: the newest backup, %s, needs backup %s, which is gone or incomplete: a delta over it could not be restored; take a full backup (backup-push without --delta)", base.Name, b.DeltaBase)
		}
		b = next
	}
	if base.DatabaseDirs == nil {
		log.Info("delta: the newest backup does not record its database directories (taken by an older walnut); taking a full backup", "backup", base.Name)
		return nil, nil
	}
	if base.DeltaDepth >= maxSteps {
		log.Info("delta: the chain of the newest backup has reached WALNUT_DELTA_MAX_STEPS; taking a full backup", "backup", base.Name, "deltas", base.DeltaDepth, "max", maxSteps)
		return nil, nil
	}
	start, err := pgcontrol.ParseLSN(sn.StartLSN)
	if err != nil {
		return nil, err
	}
	baseStart, err := pgcontrol.ParseLSN(base.StartLSN)
	if err != nil {
		return nil, fmt.Errorf("backup %s: start LSN: %w", base.Name, err)
	}
	if baseStart >= start {
		return nil, fmt.Errorf("delta: the newest backup, %s, starts at %s, not before this one (%s)", base.Name, base.StartLSN, sn.StartLSN)
	}
	return base, nil
}

// pagedCandidate says whether a delta may store the file as its changed
// pages: the main fork of a relation. The free space map and visibility
// map forks are stored whole, as their pages change without WAL.
func pagedCandidate(name string) bool {
	dir, base := path.Split(name)
	m := relationFile.FindStringSubmatch(base)
	if m == nil || m[2] != "" {
		return false
	}
	return strings.HasPrefix(dir, "base/") || dir == "global/" || strings.HasPrefix(dir, "pg_tblspc/")
}

// isDatabaseDir says whether the tar name is a database's directory.
func isDatabaseDir(name string) bool {
	parts := strings.Split(name, "/")
	last := parts[len(parts)-1]
	if last == "" || strings.Trim(last, "0123456789") != "" {
		return false
	}
	return (len(parts) == 2 && parts[0] == "base") || (len(parts) == 4 && parts[0] == "pg_tblspc")
}

// changedPages reads the file at p, size bytes long, and returns the
// blocks a delta against a backup that started at since must store (see
// pgcontrol.PageChangedSince). whole is true when the file is better
// stored whole: it is not made of pages, it shrank while read, or every
// page changed (a file created since the base).
func changedPages(p string, size int64, since pgcontrol.LSN) (blocks *pageSet, whole bool, err error) {
	if size == 0 || size%pgcontrol.PageSize != 0 {
		return nil, true, nil
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true, nil // the whole-file path skips it
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	buf := make([]byte, 32*pgcontrol.PageSize)
	n := size / pgcontrol.PageSize
	blocks = &pageSet{bits: make([]uint64, (n+63)/64)}
	for blk := int64(0); blk < n; {
		want := min(int64(len(buf)), (n-blk)*pgcontrol.PageSize)
		got, err := io.ReadFull(f, buf[:want])
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		for off := 0; off < got; off += pgcontrol.PageSize {
			if pgcontrol.PageChangedSince(buf[off:off+pgcontrol.PageSize], since) {
				blocks.add(uint32(blk))
			}
			blk++
		}
	}
	return blocks, int64(blocks.count) == n, nil
}

// pageSet is the blocks of one file a delta stores, a bit per block: 16
// KiB for a 1 GiB segment however many changed, so the walk's queue of
// files stays small.
type pageSet struct {
	bits  []uint64
	count int
}

func (s *pageSet) add(blk uint32) {
	s.bits[blk/64] |= 1 << (blk % 64)
	s.count++
}

// next returns the first block at or after from in the set.
func (s *pageSet) next(from uint32) (uint32, bool) {
	for w := int(from / 64); w < len(s.bits); w++ {
		word := s.bits[w]
		if w == int(from/64) {
			word &^= 1<<(from%64) - 1
		}
		if word != 0 {
			return uint32(w*64 + bits.TrailingZeros64(word)), true
		}
	}
	return 0, false
}

// pageReader yields the paged entry of a file: per block, its number and
// the page as it is now. A page gone since changedPages read it (the file
// shrank) reads as zeros: WAL replay truncates the file again.
type pageReader struct {
	f      *os.File
	blocks *pageSet
	from   uint32 // the next block to look for
	rec    [archive.PageRecord]byte
	off    int // read position in rec; len(rec) when a new record is due
}

func newPageReader(f *os.File, blocks *pageSet) *pageReader {
	return &pageReader{f: f, blocks: blocks, off: archive.PageRecord}
}

func (r *pageReader) Read(p []byte) (int, error) {
	if r.off == len(r.rec) {
		blk, ok := r.blocks.next(r.from)
		if !ok {
			return 0, io.EOF
		}
		r.from = blk + 1
		binary.LittleEndian.PutUint32(r.rec[:4], blk)
		page := r.rec[4:]
		n, err := r.f.ReadAt(page, int64(blk)*pgcontrol.PageSize)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		clear(page[n:])
		r.off = 0
	}
	n := copy(p, r.rec[r.off:])
	r.off += n
	return n, nil
}

// addPaged stores the changed pages of one file as one entry of
// partition n and records the file in the delta's manifest.
func (p *packer) addPaged(tw *tarball.Writer, it walkItem, n int) error {
	in, err := os.Open(it.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // dropped since the walk: not in the backup, as WAL replay would have it
	}
	if err != nil {
		return err
	}
	defer in.Close()
	size := int64(it.Pages.count) * archive.PageRecord
	f, _, err := tw.AddFile(it.Name+archive.PagedSuffix, newPageReader(in, it.Pages), size, it.Info.Mode().Perm(), it.Info.ModTime())
	if err != nil {
		return fmt.Errorf("%s: %w", it.Path, err)
	}
	p.expanded.Add(size)
	p.mu.Lock()
	p.paged = append(p.paged, archive.PagedFile{Path: it.Name, Size: it.Info.Size(), Mode: f.Mode, ModTime: f.ModTime,
		Pages: it.Pages.count, CRC32C: f.CRC32C, Partition: n})
	p.mu.Unlock()
	return nil
}
