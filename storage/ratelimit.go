package storage

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/time/rate"
)

// maxRateBurst bounds how many bytes pass at once: small enough that the
// rate holds over a fraction of a second, large enough that the limiter
// costs nothing next to the I/O.
const maxRateBurst = 64 << 10

// WithRateLimit caps the bytes per second that Put reads from its sources
// and that the bodies Get returns deliver, summed over every call in
// flight, so a backup leaves the disks and network to production. It goes
// outside WithRetry: the bytes a retried attempt sends again count too.
func WithRateLimit(s Store, bytesPerSecond int64) Store {
	burst := int(min(max(bytesPerSecond/4, 1), maxRateBurst))
	return &rateLimited{Store: s, lim: rate.NewLimiter(rate.Limit(bytesPerSecond), burst)}
}

type rateLimited struct {
	Store
	lim *rate.Limiter
}

func (r *rateLimited) Put(ctx context.Context, key string, src io.Reader, size int64) error {
	return r.Store.Put(ctx, key, r.limit(ctx, src), size)
}

func (r *rateLimited) Create(ctx context.Context, key string, src io.Reader, size int64) error {
	c, ok := r.Store.(Creator)
	if !ok {
		return noCreate(r.Store, key)
	}
	return c.Create(ctx, key, r.limit(ctx, src), size)
}

func (r *rateLimited) Temps(ctx context.Context, fn func(ObjectInfo) error) error {
	return Temps(ctx, r.Store, fn)
}

func (r *rateLimited) RemoveTemp(ctx context.Context, key string, notAfter time.Time) (bool, error) {
	return RemoveTemp(ctx, r.Store, key, notAfter)
}

// limit wraps a Put's source.
func (r *rateLimited) limit(ctx context.Context, src io.Reader) io.Reader {
	lr := &limitedReader{ctx: ctx, r: src, lim: r.lim}
	if sk, ok := src.(io.Seeker); ok {
		// Keep the source rewindable for the retry decorator below.
		return limitedReadSeeker{lr, sk}
	}
	return lr
}

func (r *rateLimited) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := r.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return limitedReadCloser{&limitedReader{ctx: ctx, r: rc, lim: r.lim}, rc}, nil
}

func (r *rateLimited) GetRange(ctx context.Context, key string, offset int64, version string) (*Range, error) {
	rr, ok := r.Store.(RangeReader)
	if !ok {
		return nil, Permanent(fmt.Errorf("get %s: %T does not read ranges", key, r.Store))
	}
	rng, err := rr.GetRange(ctx, key, offset, version)
	if err != nil {
		return nil, err
	}
	rng.Body = limitedReadCloser{&limitedReader{ctx: ctx, r: rng.Body, lim: r.lim}, rng.Body}
	return rng, nil
}

type limitedReader struct {
	ctx context.Context
	r   io.Reader
	lim *rate.Limiter
}

// Read pays for what it read after reading it, so a short read costs only
// what it delivered.
func (l *limitedReader) Read(p []byte) (int, error) {
	if b := l.lim.Burst(); len(p) > b {
		p = p[:b]
	}
	n, err := l.r.Read(p)
	if n > 0 {
		if werr := l.lim.WaitN(l.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

type limitedReadSeeker struct {
	*limitedReader
	s io.Seeker
}

func (l limitedReadSeeker) Seek(offset int64, whence int) (int64, error) {
	return l.s.Seek(offset, whence)
}

type limitedReadCloser struct {
	*limitedReader
	c io.Closer
}

func (l limitedReadCloser) Close() error { return l.c.Close() }

var (
	_ RangeReader = (*rateLimited)(nil)
	_ Creator     = (*rateLimited)(nil)
	_ TempSweeper = (*rateLimited)(nil)
)
