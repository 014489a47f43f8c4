// Package sizing is how the cloud backends store a Put of unknown size
// without holding the object in memory. Object stores want a size before
// the first byte (S3, Azure and GCS each take one request of known length,
// else parts held in memory), so:
//
//   - the first Small bytes are read into a buffer that grows only as data
//     arrives: an object that ends there (a history file, a quiet WAL
//     segment, a sentinel) is sent from memory, with its MD5;
//   - a source that goes on, and that can be rewound (a file, or wal-push's
//     compressor, which runs again from the file), is read once to learn
//     its size, rewound, and streamed in one request of that size: memory
//     stays at Small however many Puts run at once, at the cost of
//     producing the source twice;
//   - any other source goes on in parts of the backend's part size, as
//     before.
package sizing

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Small is the most a Put of unknown size holds in memory before it knows
// whether the object is small. A WAL segment that compresses well (little
// activity) fits; wal-push's pool holds at most this much per file.
const Small = 256 << 10

// Head is the start of a source of unknown size.
type Head struct {
	chunks [][]byte
	Size   int64 // bytes in the head, the extra one included
	More   bool  // the source goes on past the limit: the head holds one byte more than the limit
}

// ReadHead reads up to limit bytes of r, and one more to learn whether r
// goes on, in chunks that grow as data arrives, so a small object costs
// little and nothing is copied.
func ReadHead(r io.Reader, limit int64) (*Head, error) {
	h := &Head{}
	chunk := min(int64(16<<10), limit+1)
	for h.Size <= limit {
		buf := make([]byte, min(chunk, limit+1-h.Size))
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			h.chunks = append(h.chunks, buf[:n])
			h.Size += int64(n)
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return h, nil
		case err != nil:
			return nil, err
		}
		chunk = min(2*chunk, 1<<20)
	}
	h.More = true
	return h, nil
}

// Reader reads the head from its start; each call starts again.
func (h *Head) Reader() io.Reader {
	rs := make([]io.Reader, len(h.chunks))
	for i, c := range h.chunks {
		rs[i] = bytes.NewReader(c)
	}
	return io.MultiReader(rs...)
}

// ReadSeeker reads the head from its start and can seek within it, for
// SDKs that want to rewind a body themselves.
func (h *Head) ReadSeeker() io.ReadSeeker {
	return io.NewSectionReader(chunksAt(h.chunks), 0, h.Size)
}

// CopyTo copies the head into buf, which must hold it, and returns the
// bytes copied.
func (h *Head) CopyTo(buf []byte) int {
	n := 0
	for _, c := range h.chunks {
		n += copy(buf[n:], c)
	}
	return n
}

// MD5 is the head's MD5.
func (h *Head) MD5() []byte {
	sum := md5.New()
	for _, c := range h.chunks {
		sum.Write(c)
	}
	return sum.Sum(nil)
}

type chunksAt [][]byte

func (c chunksAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for _, chunk := range c {
		if off >= int64(len(chunk)) {
			off -= int64(len(chunk))
			continue
		}
		m := copy(p[n:], chunk[off:])
		n += m
		off = 0
		if n == len(p) {
			return n, nil
		}
	}
	return n, io.EOF
}

// Rewinder returns a function that puts r back where it is now, or nil
// when r cannot be rewound: it must be an io.Seeker that answers where it
// is (a pipe behind an *os.File is a Seeker that cannot seek).
func Rewinder(r io.Reader) func() error {
	sk, ok := r.(io.Seeker)
	if !ok {
		return nil
	}
	start, err := sk.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil
	}
	return func() error {
		_, err := sk.Seek(start, io.SeekStart)
		return err
	}
}

// Measure reads the rest of src, whose first head.Size bytes are read
// already, to learn the whole size, feeding every byte, the head's
// included, to sum if it is not nil; then it rewinds the source with
// rewind. The second reading must yield as many bytes: pass it through
// exactsize.Reader. It need not yield the same ones (encryption draws a
// new session key each time), so a digest from the first reading is only
// a claim the store may check.
func Measure(src io.Reader, head *Head, rewind func() error, sum hash.Hash) (int64, error) {
	w := io.Discard
	if sum != nil {
		for _, c := range head.chunks {
			sum.Write(c)
		}
		w = sum
	}
	n, err := io.Copy(w, src)
	if err != nil {
		return 0, fmt.Errorf("read source: %w", err)
	}
	if err := rewind(); err != nil {
		return 0, &RewindError{Err: err}
	}
	return head.Size + n, nil
}

// RewindError is a source that was read through to learn its size and
// could not be rewound: it is spent, and no retry can send it.
type RewindError struct{ Err error }

func (e *RewindError) Error() string { return "rewind source after measuring it: " + e.Err.Error() }
func (e *RewindError) Unwrap() error { return e.Err }

// ErrSpent is what a body that an SDK tries to rewind after reading says.
var ErrSpent = errors.New("cannot rewind a streamed body")

// Body is a stream of known size that passes for an io.ReadSeekCloser,
// for SDKs that ask a body its length by seeking to its end and rewind it
// before sending: it can seek to its start only while nothing is read.
type Body struct {
	R    io.Reader
	Size int64
	read int64
	pos  int64
}

func (b *Body) Read(p []byte) (int, error) {
	if b.pos != b.read {
		return 0, ErrSpent
	}
	n, err := b.R.Read(p)
	b.read += int64(n)
	b.pos = b.read
	return n, err
}

func (b *Body) Seek(offset int64, whence int) (int64, error) {
	var to int64
	switch whence {
	case io.SeekStart:
		to = offset
	case io.SeekCurrent:
		to = b.pos + offset
	case io.SeekEnd:
		to = b.Size + offset
	}
	switch {
	case to == b.read, to == b.Size:
		b.pos = to
		return to, nil
	}
	return 0, ErrSpent
}

func (b *Body) Close() error { return nil }
