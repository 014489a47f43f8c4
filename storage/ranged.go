package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrChanged is the failure, always Permanent, of a read that cannot go on
// because the object was overwritten or deleted since it began: the bytes
// already handed over and the rest would belong to different objects.
var ErrChanged = errors.New("object changed while it was read")

// RangeReader is a Store that can open an object at an offset, tied to the
// version read before. Every backend implements it: it is what lets the
// retry decorator resume a read whose connection broke midway.
type RangeReader interface {
	// GetRange opens key for reading from offset, which is 0 or less
	// than the object's size. When version is not "", it is the Version of an
	// earlier Range of key, and GetRange fails with an error that
	// errors.Is ErrChanged if the object is another version now. A
	// missing key is ErrNotFound, version or not.
	GetRange(ctx context.Context, key string, offset int64, version string) (*Range, error)
}

// Range is an object opened at an offset.
type Range struct {
	Body io.ReadCloser // the object's bytes from the offset to its end
	// Version names the object's content as stored (an ETag, a
	// generation); "" when the store has no way to pin it, and then a
	// read is never resumed.
	Version string
	// Size is the whole object's size, not the range's.
	Size int64
}

// Changed returns the error for key having changed while read, Permanent
// and matching ErrChanged; detail, if any, says how. It never matches
// ErrNotFound, even for a deleted object: wal-fetch must not answer "not in
// the archive" for a segment it was halfway through reading.
func Changed(op, key, detail string) error {
	if detail == "" {
		return Permanent(fmt.Errorf("%s %s: %w", op, key, ErrChanged))
	}
	return Permanent(fmt.Errorf("%s %s: %w (%s)", op, key, ErrChanged, detail))
}

// ParseContentRange reads the total size from an HTTP Content-Range header
// of a successful range request, "bytes 100-199/1234"; -1 when it gives
// none.
func ParseContentRange(h string) int64 {
	var start, end, total int64
	if n, _ := fmt.Sscanf(h, "bytes %d-%d/%d", &start, &end, &total); n == 3 {
		return total
	}
	return -1
}
