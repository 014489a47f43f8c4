package receive

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/walnut-pg/walnut/pgcontrol"
)

// storeItem is a finished file waiting in the work directory for the
// store, in the order it must be stored: the stored position only ever
// covers WAL with nothing missing before it.
type storeItem struct {
	path    string
	end     pgcontrol.LSN // the stored position once it is stored; 0: unchanged (history files)
	partial bool          // the last, incomplete segment of a timeline that ended
}

// segments assembles the streamed WAL into segment files in the work
// directory, as pg_receivewal does: the segment being written is a
// full-size <name>.partial, zero beyond what has arrived, renamed to
// <name> once whole. The receiver writes; the uploader takes finished
// files from the queue and snapshots the one being written.
type segments struct {
	dir     string
	segSize uint64

	mu      sync.Mutex
	tli     uint32
	segNo   uint64
	file    *os.File // nil: no segment open
	written pgcontrol.LSN
	stored  pgcontrol.LSN // durable in the store
	queue   []storeItem
	failed  error // the uploader gave up: stop streaming

	wake     chan struct{} // receiver -> uploader: something to store
	progress chan struct{} // uploader -> receiver: stored moved
}

func newSegments(dir string) *segments {
	return &segments{dir: dir, wake: make(chan struct{}, 1), progress: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// positions returns what the server is told: received and stored.
func (s *segments) positions() (written, stored pgcontrol.LSN) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written, s.stored
}

// resumePoint is where a new connection continues on the open segment,
// if one is open.
func (s *segments) resumePoint() (tli uint32, lsn pgcontrol.LSN, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tli, s.written, s.file != nil
}

// begin opens the segment starting at start on timeline tli, unless
// that stream is already open and continues at start.
func (s *segments) begin(tli uint32, start pgcontrol.LSN) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != nil {
		if s.tli == tli && s.written == start {
			return nil
		}
		return fmt.Errorf("stream restarts at %s on timeline %d, but %s on timeline %d is open", start, tli, s.written, s.tli)
	}
	if uint64(start)%s.segSize != 0 {
		return fmt.Errorf("stream must start at a segment boundary, not %s", start)
	}
	if s.stored < start && len(s.queue) == 0 {
		// What came before a fresh start is stored, or (WAL the server
		// no longer has) given up with an error. The server also reads
		// a flush position of 0 as "unknown".
		s.stored = start
	}
	return s.open(tli, pgcontrol.SegmentNumber(start, s.segSize))
}

func (s *segments) open(tli uint32, segNo uint64) error {
	name := pgcontrol.WALFileName(tli, segNo, s.segSize)
	path := filepath.Join(s.dir, name+partialSuffix)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	// Full size from the start, zero beyond what has arrived: the shape
	// PostgreSQL reads a partial segment in.
	if err := f.Truncate(int64(s.segSize)); err != nil {
		f.Close()
		return fmt.Errorf("size %s: %w", path, err)
	}
	s.tli, s.segNo, s.file = tli, segNo, f
	s.written = pgcontrol.SegmentStart(segNo, s.segSize)
	return nil
}

// write adds streamed WAL that begins at at.
func (s *segments) write(at pgcontrol.LSN, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return fmt.Errorf("WAL at %s arrived with no segment open", at)
	}
	if at != s.written {
		return fmt.Errorf("WAL arrived at %s, expected %s", at, s.written)
	}
	for len(data) > 0 {
		segStart := pgcontrol.SegmentStart(s.segNo, s.segSize)
		off := uint64(s.written - segStart)
		n := min(uint64(len(data)), s.segSize-off)
		if _, err := s.file.WriteAt(data[:n], int64(off)); err != nil {
			return fmt.Errorf("write %s: %w", s.file.Name(), err)
		}
		s.written += pgcontrol.LSN(n)
		data = data[n:]
		if off+n == s.segSize {
			if err := s.complete(); err != nil {
				return err
			}
		}
	}
	return nil
}

// complete queues the whole segment and opens the next.
func (s *segments) complete() error {
	f := s.file
	s.file = nil
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	whole := filepath.Join(s.dir, pgcontrol.WALFileName(s.tli, s.segNo, s.segSize))
	if err := os.Rename(f.Name(), whole); err != nil {
		return err
	}
	s.queue = append(s.queue, storeItem{path: whole, end: s.written})
	signal(s.wake)
	return s.open(s.tli, s.segNo+1)
}

// endTimeline closes the open segment of a timeline the server ended:
// what arrived of it is stored as its final .partial.
func (s *segments) endTimeline() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	f := s.file
	s.file = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	if s.written == pgcontrol.SegmentStart(s.segNo, s.segSize) {
		return os.Remove(f.Name())
	}
	s.queue = append(s.queue, storeItem{path: f.Name(), end: s.written, partial: true})
	signal(s.wake)
	return nil
}

// addFile queues a file that moves no position (a history file).
func (s *segments) addFile(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, storeItem{path: path})
	signal(s.wake)
}

// next returns the first file waiting for the store.
func (s *segments) next() (storeItem, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return storeItem{}, false
	}
	return s.queue[0], true
}

// done records that the first waiting file is stored.
func (s *segments) done(it storeItem) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = s.queue[1:]
	s.advance(it.end)
}

func (s *segments) advance(to pgcontrol.LSN) {
	if to > s.stored {
		s.stored = to
		signal(s.progress)
	}
}

// snapshot copies the open segment as far as it has arrived into path
// (full size, zero beyond), for an upload while writing goes on. It
// returns the end of what it copied, 0 when there is nothing new to
// store or files are still waiting before it.
func (s *segments) snapshot(path string) (pgcontrol.LSN, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	segStart := pgcontrol.SegmentStart(s.segNo, s.segSize)
	if s.file == nil || len(s.queue) > 0 || s.written <= s.stored || s.written == segStart {
		return 0, nil
	}
	n := int64(s.written - segStart)
	dst, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer dst.Close()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < n; {
		m := min(int64(len(buf)), n-off)
		if _, err := s.file.ReadAt(buf[:m], off); err != nil {
			return 0, fmt.Errorf("read %s: %w", s.file.Name(), err)
		}
		if _, err := dst.WriteAt(buf[:m], off); err != nil {
			return 0, fmt.Errorf("write %s: %w", path, err)
		}
		off += m
	}
	if err := dst.Truncate(int64(s.segSize)); err != nil {
		return 0, err
	}
	return s.written, nil
}

// partialStored records an uploaded snapshot.
func (s *segments) partialStored(end pgcontrol.LSN) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(end)
}

func (s *segments) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = err
	}
}

func (s *segments) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// closeFile closes the open segment file at exit; the files stay for the
// final upload.
func (s *segments) closeFile() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != nil {
		s.file.Close()
	}
}

// openName is the name of the segment being written, "" if none.
func (s *segments) openName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return ""
	}
	return pgcontrol.WALFileName(s.tli, s.segNo, s.segSize)
}
