package storagetest

import (
	"context"
	"io"
	"math/rand/v2"
)

// RandomBytes is an endless deterministic stream of incompressible bytes;
// the same seed gives the same stream.
func RandomBytes(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// RandomData returns n bytes of RandomBytes(seed) without holding them,
// behind a reader that hides everything but Read.
func RandomData(seed byte, n int64) io.Reader {
	return OnlyReader{io.LimitReader(RandomBytes(seed), n)}
}

// OnlyReader hides everything but Read, so no backend can seek, stat or
// WriteTo its way around streaming.
type OnlyReader struct{ R io.Reader }

func (o OnlyReader) Read(p []byte) (int, error) { return o.R.Read(p) }

// FailAfter passes N bytes of R through, then fails with Err, as a
// compression pipeline that breaks midway would. N counts down to 0 as
// bytes pass.
type FailAfter struct {
	R   io.Reader
	N   int64
	Err error
}

func (f *FailAfter) Read(p []byte) (int, error) {
	if f.N <= 0 {
		return 0, f.Err
	}
	if int64(len(p)) > f.N {
		p = p[:f.N]
	}
	n, err := f.R.Read(p)
	f.N -= int64(n)
	return n, err
}

// CancelAfter reads R and calls Cancel once N bytes have passed, then
// keeps going as if nothing happened: a caller giving up mid-upload.
type CancelAfter struct {
	R      io.Reader
	N      int64
	Cancel context.CancelFunc
}

func (c *CancelAfter) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	if c.N -= int64(n); c.N <= 0 {
		c.Cancel()
	}
	return n, err
}
