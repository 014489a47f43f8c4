package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// PostgreSQL's startup process runs restore_command for one segment at a
// time and replays it before asking for the next, so a store's latency is
// paid once per segment. wal-fetch hands the next segments to a background
// process (wal-prefetch) that fetches them into pg_wal/.walnut/prefetch;
// the next wal-fetch takes its segment from there with a rename.
//
// Files in the prefetch directory:
//   - <segment>: complete, its digest checked against its key, fsynced,
//     then renamed to this name. Only such a file is ever handed over.
//   - .<segment>.walnut-tmp-*: being written (writeFileAtomic), or left by
//     a fetch that died; removed by the next prefetch that takes the lock.
//   - .<segment>.lock: flock(2) held by whoever is fetching <segment>, the
//     prefetcher or a wal-fetch. The kernel drops the lock when its holder
//     dies, so a killed prefetch never blocks anyone.
//
// An archived name never changes content (wal-push refuses other content
// under a stored name), so a prefetched segment is as good as a fresh
// fetch. A segment fetched but never asked for is removed by the next
// prefetch once PostgreSQL has moved past it, or by wal-push once the
// server has left recovery.

// PrefetchDir returns the directory prefetched segments for dest wait in,
// and false when dest is not in a server's pg_wal (an operator's
// hand-run wal-fetch does not prefetch).
func PrefetchDir(dest string) (string, bool) {
	walDir := filepath.Dir(dest)
	if !isPGWALDir(walDir) {
		return "", false
	}
	return walStatePath(walDir, prefetchDirName), true
}

// PrefetchWait bounds how long wal-fetch waits for a prefetch of the
// segment it wants that is under way, before fetching it itself.
const PrefetchWait = 2 * time.Minute

// FetchPrefetched is Fetch that first looks in dir for a prefetched
// copy of o.Name, waiting up to wait for one being fetched. It reports
// whether the segment came from dir.
func FetchPrefetched(ctx context.Context, o FetchOptions, dir string, wait time.Duration) (bool, error) {
	if !pgcontrol.IsWALFileName(o.Name) {
		return false, Fetch(ctx, o)
	}
	if takePrefetched(dir, o.Name, o.Dest) {
		return true, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		o.Log.Warn("cannot use the prefetch directory", "err", err)
		return false, Fetch(ctx, o)
	}
	// Holding the segment's lock waits out a prefetch under way and keeps
	// a new one from fetching it a second time meanwhile.
	lock, err := lockSegment(ctx, dir, o.Name, wait)
	switch {
	case err != nil:
		o.Log.Warn("cannot lock the prefetch directory", "err", err)
	case lock == nil:
		o.Log.Warn("a prefetch of this segment is taking long; fetching it here", "name", o.Name)
	default:
		defer lock.release()
		if takePrefetched(dir, o.Name, o.Dest) {
			return true, nil
		}
		// Only a lock holder writes this segment's temp files, so any
		// there now are a dead prefetch's. A later sweep could find the
		// lock busy and skip them; the fetch that holds it clears them.
		removeTemps(dir, o.Name)
	}
	return false, Fetch(ctx, o)
}

// takePrefetched moves the prefetched segment name to dest. A rename in one
// file system is atomic: dest is the whole segment or untouched, and of two
// wal-fetches racing for one file exactly one gets it.
func takePrefetched(dir, name, dest string) bool {
	p := filepath.Join(dir, name)
	if _, err := SegmentSize(p); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			os.Remove(p) // not a whole segment: never hand it over
		}
		return false
	}
	if err := os.Rename(p, dest); err != nil {
		return false
	}
	archive.SyncDir(filepath.Dir(dest))
	return true
}

// SegmentSize returns the WAL segment size recorded in the first page of
// the segment at path, and an error unless the file has exactly that size.
func SegmentSize(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	head := make([]byte, archive.WALHeadSize)
	if _, err := io.ReadFull(f, head); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	_, segSize, err := pgcontrol.WALSegmentSystemIdentifier(head)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() != int64(segSize) {
		return 0, fmt.Errorf("%s: %d bytes, want a whole %d-byte segment", path, fi.Size(), segSize)
	}
	return uint64(segSize), nil
}

// prefetchWorkers is how many segments a prefetch fetches at once.
const prefetchWorkers = 4

// maxPrefetchBytes bounds the disk a prefetch may fill, whatever the
// segment size: a standby must not fill pg_wal's file system ahead of
// replay.
const maxPrefetchBytes = 1 << 30

// PrefetchOptions is what the background prefetch needs.
type PrefetchOptions struct {
	// FetchOptions says how to fetch (Store, Log); Name is the segment
	// PostgreSQL asked for, the one the prefetch goes on from. Dest is not
	// used.
	FetchOptions
	Dir         string // the prefetch directory
	Count       int    // how many segments after Name to fetch, at most 1 GiB of them
	SegmentSize uint64
}

// PrefetchResult says what a prefetch did.
type PrefetchResult struct {
	Fetched []string // segments fetched now
	Present int      // already prefetched, or being fetched by someone else
	Missing int      // not (yet) in the archive
	Failed  int
}

// Prefetch fetches the Count segments after o.Name on o.Name's timeline
// into o.Dir, nearest first and a few at once, skipping those already
// there or being fetched. A segment that is not in the archive (the end
// of the archive, or not yet archived while a standby follows it) is
// normal, and the prefetch stops there. Prefetch also removes
// what is no longer needed: segments before o.Name and files left by a
// prefetch that died.
func Prefetch(ctx context.Context, o PrefetchOptions) (PrefetchResult, error) {
	var res PrefetchResult
	if !pgcontrol.ValidSegmentSize(o.SegmentSize) {
		return res, fmt.Errorf("prefetch: invalid WAL segment size %d", o.SegmentSize)
	}
	tli, segNo, err := pgcontrol.ParseWALFileName(o.Name, o.SegmentSize)
	if err != nil {
		return res, fmt.Errorf("prefetch: %w", err)
	}
	count := min(o.Count, max(1, int(maxPrefetchBytes/o.SegmentSize)))
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return res, err
	}
	// Recovery never goes back to an earlier segment, on any timeline.
	sweepPrefetchDir(o.Dir, func(seg string) bool {
		_, s, err := pgcontrol.ParseWALFileName(seg, o.SegmentSize)
		return err != nil || s < segNo
	})

	// In order, a few at a time: the segment replay needs next comes
	// first, and a few downloads at once already hide a store's latency.
	names := make(chan string, count)
	for i := 1; i <= count; i++ {
		names <- pgcontrol.WALFileName(tli, segNo+uint64(i), o.SegmentSize)
	}
	close(names)
	var mu sync.Mutex
	var end atomic.Bool // a segment was not found: the archive ends there
	var wg sync.WaitGroup
	for range min(count, prefetchWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				var fetched bool
				err := storage.ErrNotFound
				if !end.Load() {
					fetched, err = prefetchOne(ctx, o, name)
				}
				mu.Lock()
				switch {
				case errors.Is(err, storage.ErrNotFound):
					end.Store(true)
					res.Missing++
				case err != nil:
					res.Failed++
					if ctx.Err() == nil {
						o.Log.Warn("prefetch failed; wal-fetch will fetch it when asked", "name", name, "err", err)
					}
				case fetched:
					res.Fetched = append(res.Fetched, name)
				default:
					res.Present++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res, nil
}

// PrefetchWanted reports whether a prefetch after name is worth starting:
// whether fewer than half of the count segments after it are prefetched
// or being fetched. Refilling only then fetches in batches, so a steady
// replay starts a background process every few segments rather than for
// each one, and still never runs out of segments fetched ahead.
func PrefetchWanted(dir, name string, segSize uint64, count int) bool {
	tli, segNo, err := pgcontrol.ParseWALFileName(name, segSize)
	if err != nil || count < 1 {
		return false
	}
	count = min(count, max(1, int(maxPrefetchBytes/segSize)))
	ahead := 0
	for i := 1; i <= count; i++ {
		seg := pgcontrol.WALFileName(tli, segNo+uint64(i), segSize)
		if _, err := os.Stat(filepath.Join(dir, seg)); err == nil || lockHeld(dir, seg) {
			ahead++
		}
	}
	return ahead*2 < count
}

// lockHeld reports whether someone holds seg's lock, without taking it.
func lockHeld(dir, seg string) bool {
	f, err := os.Open(filepath.Join(dir, "."+seg+lockSuffix))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// prefetchOne fetches name into dir unless it is there or being fetched.
func prefetchOne(ctx context.Context, o PrefetchOptions, name string) (bool, error) {
	final := filepath.Join(o.Dir, name)
	if _, err := os.Stat(final); err == nil {
		return false, nil
	}
	lock, err := lockSegment(ctx, o.Dir, name, 0)
	if err != nil || lock == nil {
		return false, err
	}
	defer lock.release()
	if _, err := os.Stat(final); err == nil {
		return false, nil
	}
	removeTemps(o.Dir, name)
	fo := o.FetchOptions
	fo.Name, fo.Dest, fo.WholeOnly = name, final, true
	if err := Fetch(ctx, fo); err != nil {
		return false, err
	}
	return true, nil
}

// sweepPrefetchDir removes the prefetched segments drop names, and lock
// and temporary files that no one holds: those a prefetch left when it
// died.
func sweepPrefetchDir(dir string, drop func(seg string) bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		n := e.Name()
		if pgcontrol.IsWALFileName(n) {
			if drop(n) {
				os.Remove(filepath.Join(dir, n))
			}
			continue
		}
		seg, ok := tempSegment(n)
		if !ok {
			continue
		}
		if lock, _ := lockSegment(context.Background(), dir, seg, 0); lock != nil {
			removeTemps(dir, seg)
			lock.release()
		}
	}
}

// clearPrefetched empties dir of everything no one is writing: after
// recovery nothing will ask for a prefetched segment.
func clearPrefetched(dir string) {
	sweepPrefetchDir(dir, func(string) bool { return true })
}

const lockSuffix = ".lock"

// tempSegment returns the segment a lock file or one of writeFileAtomic's
// temporary files is for.
func tempSegment(file string) (string, bool) {
	rest, ok := strings.CutPrefix(file, ".")
	if !ok {
		return "", false
	}
	seg, ok := strings.CutSuffix(rest, lockSuffix)
	if !ok {
		seg, _, ok = strings.Cut(rest, archive.TempInfix)
	}
	return seg, ok && pgcontrol.IsWALFileName(seg)
}

func removeTemps(dir, seg string) {
	m, _ := filepath.Glob(filepath.Join(dir, "."+seg+archive.TempInfix+"*"))
	for _, p := range m {
		os.Remove(p)
	}
}

// segLock is a held flock on .<segment>.lock.
type segLock struct {
	f    *os.File
	path string
}

// lockSegment takes the lock for seg in dir, waiting up to wait while
// someone else holds it. It returns nil without an error when the wait
// ran out.
func lockSegment(ctx context.Context, dir, seg string, wait time.Duration) (*segLock, error) {
	p := filepath.Join(dir, "."+seg+lockSuffix)
	deadline := time.Now().Add(wait)
	for {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			// The previous holder removes the lock file before it lets
			// go; a lock on a file no longer at p guards nothing.
			if sameFile(f, p) {
				return &segLock{f: f, path: p}, nil
			}
			f.Close()
			continue
		}
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
		if !time.Now().Before(deadline) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func sameFile(f *os.File, p string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(p)
	return err == nil && os.SameFile(a, b)
}

// release removes the lock file while still holding the lock, so whoever
// opened it meanwhile sees it gone (sameFile) and opens a new one.
func (l *segLock) release() {
	os.Remove(l.path)
	l.f.Close()
}
