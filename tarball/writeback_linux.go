package tarball

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackChunk is how much is written before writeback is started: big
// enough for large sequential writes, small enough that the disk starts
// early, as PostgreSQL's *_flush_after settings do.
const writebackChunk = 8 << 20

// startWriteback starts writing a range of f to disk without waiting.
// It is only a hint: an error here will show again at fsync, which is
// what makes the file durable.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
