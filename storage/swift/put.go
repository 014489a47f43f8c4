package swift

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/ncw/swift/v2"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/internal/sizing"
)

const contentType = "application/octet-stream"

// headLimit bounds what Put holds in memory to learn whether an object of
// unknown size from a source that cannot be rewound fits in one plain
// PUT: a 16 MiB WAL segment does, whatever its codec and with
// encryption's few bytes on top; anything longer is streamed as a large
// object. A source that can be rewound (wal-push's) is held only up to
// sizing.Small, then measured and streamed.
const headLimit = 20 << 20

// Put stores an object in one PUT, which Swift commits only once it has
// every byte, or as a static large object: segments first, under
// segmentsDir, then the manifest that makes the object visible. A failed
// Put leaves the old object, if any, and deletes the segments it wrote.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	name, err := s.begin(ctx, "put", key)
	if err != nil {
		return err
	}
	lim, err := s.clusterLimits(ctx)
	if err != nil {
		return s.errorf(err, "put %s: %v", key, err)
	}
	rewind := sizing.Rewinder(r)
	src := storage.ContextReader(ctx, r)
	if size < 0 {
		limit := min(headLimit, lim.segment)
		if rewind != nil {
			limit = min(sizing.Small, lim.segment)
		}
		h, err := sizing.ReadHead(src, limit)
		if err != nil {
			return s.readError(ctx, key, err)
		}
		if !h.More {
			return s.putOne(ctx, key, name, h.Reader(), h.Size, hex.EncodeToString(h.MD5()))
		}
		if rewind == nil {
			return s.putLarge(ctx, key, name, io.MultiReader(h.Reader(), src), -1, lim)
		}
		if size, err = sizing.Measure(src, h, rewind, nil); err != nil {
			return s.readError(ctx, key, err)
		}
	}
	if size <= lim.segment {
		return s.putOne(ctx, key, name, &exactReader{r: src, left: size, size: size}, size, "")
	}
	return s.putLarge(ctx, key, name, src, size, lim)
}

func (s *Store) readError(ctx context.Context, key string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return s.errorf(cerr, "put %s: %v", key, cerr)
	}
	return s.errorf(err, "put %s: read source: %v", key, err)
}

// putOne stores body, size bytes, in one PUT. etag, the body's MD5 when
// known in advance, lets Swift refuse a body damaged on the way; without
// it the MD5 is checked against Swift's answer.
func (s *Store) putOne(ctx context.Context, key, name string, body io.Reader, size int64, etag string) error {
	old, err := s.segmentsOf(ctx, name)
	if err != nil && status(err) != http.StatusNotFound {
		return s.translate(ctx, "put", key, err)
	}
	h := swift.Headers{"Content-Length": strconv.FormatInt(size, 10)}
	if _, err := s.conn.ObjectPut(ctx, s.container, name, body, etag == "", etag, contentType, h); err != nil {
		return s.putError(ctx, key, err)
	}
	s.containerSeen.Store(true)
	s.deleteSegments(ctx, old)
	return nil
}

// putError maps a failed PUT. A 404 there can only mean the container.
func (s *Store) putError(ctx context.Context, key string, err error) error {
	if ctx.Err() == nil && status(err) == http.StatusNotFound {
		return s.containerMissing("put", key, err)
	}
	return s.translate(ctx, "put", key, err)
}

// exactReader passes on exactly size bytes of r and fails if r has more or
// fewer. It holds back the last bytes until it has seen r end: Swift stores
// an object once it has Content-Length bytes, so a source that turns out
// too long must fail before that.
type exactReader struct {
	r          io.Reader
	left, size int64
	done       bool
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.done {
		return 0, io.EOF
	}
	if e.left == 0 {
		if err := e.checkEnd(); err != nil {
			return 0, err
		}
		e.done = true
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case e.left == 0:
		if err := e.checkEnd(); err != nil {
			return 0, err
		}
		e.done = true
		return n, nil
	case err == io.EOF:
		return n, fmt.Errorf("source ended after %d of the %d bytes announced", e.size-e.left, e.size)
	}
	return n, err
}

func (e *exactReader) checkEnd() error {
	var b [1]byte
	for {
		n, err := e.r.Read(b[:])
		switch {
		case n > 0:
			return fmt.Errorf("source has more than the %d bytes announced", e.size)
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}
