package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// RetryPolicy says how hard WithRetry tries before giving up.
type RetryPolicy struct {
	// MaxAttempts bounds the attempts per call, the first one included;
	// values below 1 mean 1.
	MaxAttempts int
	// InitialInterval and MaxInterval bound the jittered exponential wait
	// between attempts.
	InitialInterval, MaxInterval time.Duration
	// AttemptTimeout bounds one attempt of Stat, List (the whole listing),
	// Delete, and Get until it returns the reader; zero means no bound. Put
	// has none: a large upload may rightly take hours.
	AttemptTimeout time.Duration
	// Logger receives one Warn record per retry; nil discards them.
	Logger *slog.Logger
}

// DefaultRetryPolicy is the policy walnut wraps every backend in. Its waits
// (about 0.1, 0.2, 0.4 and 0.8s, jittered by half) ride out a brief network
// or throttling blip while archive_command still answers PostgreSQL
// promptly; PostgreSQL itself retries a failed archive_command later.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		// About 15 seconds of waiting in all: a wal-fetch that gives up
		// during archive recovery stops the server, so ride out blips.
		MaxAttempts:     7,
		InitialInterval: 250 * time.Millisecond,
		MaxInterval:     8 * time.Second,
		AttemptTimeout:  60 * time.Second,
	}
}

// WithRetry wraps s so that failed calls are tried again according to p.
// What is retried is decided by retryable alone.
func WithRetry(s Store, p RetryPolicy) Store {
	if p.MaxAttempts < 1 {
		p.MaxAttempts = 1
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	return &retryStore{s: s, p: p}
}

// retryable is the whole retry decision. ctx is the caller's context, not
// the attempt's: an attempt that hit AttemptTimeout is worth another try,
// a caller that gave up is not.
func retryable(ctx context.Context, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExists), IsPermanent(err):
		return false
	case ctx.Err() != nil:
		return false
	}
	return true
}

type retryStore struct {
	s Store
	p RetryPolicy
}

// retry runs attempt until it succeeds, fails for good, or the attempts run
// out. attempt wraps in noRetry the failures that must not be retried
// whatever their kind (an error from a List callback, a source that cannot
// be rewound).
func retry[T any](ctx context.Context, r *retryStore, op, key string, attempt func() (T, error)) (T, error) {
	var last error
	n := 0
	operation := func() (T, error) {
		n++
		v, err := attempt()
		if p, ok := err.(*backoff.PermanentError); ok {
			last = p.Err
			return v, err
		}
		last = err
		if !retryable(ctx, err) {
			return v, backoff.Permanent(err)
		}
		return v, err
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval:     r.p.InitialInterval,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          2,
		MaxInterval:         r.p.MaxInterval,
	}
	notify := func(err error, wait time.Duration) {
		r.p.Logger.Warn("storage call failed; retrying",
			"op", op, "key", key, "attempt", n, "max_attempts", r.p.MaxAttempts,
			"wait", wait, "error", err)
	}
	v, err := backoff.Retry(ctx, operation,
		backoff.WithBackOff(b),
		backoff.WithMaxTries(uint(r.p.MaxAttempts)),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(notify))
	if err != nil && last != nil && ctx.Err() != nil && !errors.Is(err, last) {
		// The caller gave up while we waited to retry: backoff hands back
		// only the context's error, and the failure that made us wait is
		// what the operator needs to see. It already names the call and
		// the key, as every backend's errors do.
		err = fmt.Errorf("%w (gave up waiting to retry: %w)", last, err)
	}
	return v, err
}

// noRetry makes attempt's failure final.
func noRetry(err error) error { return backoff.Permanent(err) }

func (r *retryStore) timeout() time.Duration { return r.p.AttemptTimeout }

// attemptContext bounds one attempt by AttemptTimeout.
func (r *retryStore) attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.timeout() <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, r.timeout())
}

func (r *retryStore) Put(ctx context.Context, key string, src io.Reader, size int64) error {
	return r.store(ctx, "put", key, src, size, r.s.Put)
}

// Create is retried as Put is. An attempt whose answer was lost after it
// stored the object makes the next one fail with ErrExists, which is
// returned as it is, never taken for success: only the caller can tell
// its own object from another writer's.
func (r *retryStore) Create(ctx context.Context, key string, src io.Reader, size int64) error {
	c, ok := r.s.(Creator)
	if !ok {
		return noCreate(r.s, key)
	}
	return r.store(ctx, "create", key, src, size, c.Create)
}

// store runs put, retrying it only when src can be rewound.
func (r *retryStore) store(ctx context.Context, op, key string, src io.Reader, size int64,
	put func(context.Context, string, io.Reader, int64) error) error {
	seeker, ok := src.(io.Seeker)
	var start int64
	if ok {
		var err error
		// A pipe or terminal behind an *os.File is a Seeker that cannot seek.
		start, err = seeker.Seek(0, io.SeekCurrent)
		ok = err == nil
	}
	if !ok {
		// The bytes a failed attempt consumed are gone: one attempt only.
		return put(ctx, key, src, size)
	}
	first := true
	_, err := retry(ctx, r, op, key, func() (struct{}, error) {
		if !first {
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				return struct{}{}, noRetry(fmt.Errorf("%s %s: rewind source for retry: %w", op, key, err))
			}
		}
		first = false
		return struct{}{}, put(ctx, key, src, size)
	})
	return err
}

// Get retries opening key, and when the backend can read from an offset
// (RangeReader) it also resumes a read that fails midway: see resumer.
func (r *retryStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rr, ok := r.s.(RangeReader)
	if !ok {
		return retry(ctx, r, "get", key, func() (io.ReadCloser, error) {
			return r.openBody(ctx, key, func(actx context.Context) (io.ReadCloser, error) { return r.s.Get(actx, key) })
		})
	}
	attempts := 0
	rng, err := retry(ctx, r, "get", key, func() (*Range, error) {
		attempts++
		return r.openRange(ctx, rr, key, 0, "")
	})
	if err != nil {
		return nil, err
	}
	return &resumer{r: r, ctx: ctx, rr: rr, key: key, body: rng.Body, version: rng.Version, size: rng.Size, attempts: attempts}, nil
}

// GetRange retries opening a range of key, as Get does, but does not
// resume its body: a ranged read is what resuming is built from.
func (r *retryStore) GetRange(ctx context.Context, key string, offset int64, version string) (*Range, error) {
	rr, ok := r.s.(RangeReader)
	if !ok {
		return nil, Permanent(fmt.Errorf("get %s: %T does not read ranges", key, r.s))
	}
	return retry(ctx, r, "get", key, func() (*Range, error) {
		return r.openRange(ctx, rr, key, offset, version)
	})
}

// openRange is one attempt of GetRange, bounded as openBody bounds it.
func (r *retryStore) openRange(ctx context.Context, rr RangeReader, key string, offset int64, version string) (*Range, error) {
	var rng *Range
	body, err := r.openBody(ctx, key, func(actx context.Context) (io.ReadCloser, error) {
		g, err := rr.GetRange(actx, key, offset, version)
		if err != nil {
			return nil, err
		}
		rng = g
		return g.Body, nil
	})
	if err != nil {
		return nil, err
	}
	rng.Body = body
	return rng, nil
}

// openBody bounds open by AttemptTimeout only until it returns the body:
// the body lives on under a context that is cancelled when it is closed,
// however long the caller takes to read it.
func (r *retryStore) openBody(ctx context.Context, key string, open func(context.Context) (io.ReadCloser, error)) (io.ReadCloser, error) {
	actx, cancel := context.WithCancelCause(ctx)
	var timer *time.Timer
	if d := r.timeout(); d > 0 {
		timer = time.AfterFunc(d, func() {
			cancel(fmt.Errorf("attempt timed out after %s: %w", d, context.DeadlineExceeded))
		})
	}
	body, err := open(actx)
	if timer != nil && !timer.Stop() && err == nil {
		// The timer fired as Get returned: the body's context is dead.
		body.Close()
		err = fmt.Errorf("get %s: the attempt timed out as it returned", key)
	}
	if err != nil {
		if ctx.Err() == nil && actx.Err() != nil {
			// The backend saw only "canceled"; say it was our timeout.
			err = fmt.Errorf("%w (%w)", err, context.Cause(actx))
		}
		cancel(nil)
		return nil, err
	}
	return &cancelOnClose{ReadCloser: body, cancel: cancel}, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel(nil)
	return err
}

func (r *retryStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	return retry(ctx, r, "stat", key, func() (ObjectInfo, error) {
		actx, cancel := r.attemptContext(ctx)
		defer cancel()
		return r.s.Stat(actx, key)
	})
}

// List resumes a retried listing after the last key already handed to fn,
// so fn never sees a key twice.
func (r *retryStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	var lastKey string
	delivered := false
	_, err := retry(ctx, r, "list", prefix, func() (struct{}, error) {
		actx, cancel := r.attemptContext(ctx)
		defer cancel()
		var fnErr error
		err := r.s.List(actx, prefix, func(info ObjectInfo) error {
			if delivered && info.Key <= lastKey {
				return nil
			}
			if fnErr = fn(info); fnErr != nil {
				return fnErr
			}
			lastKey, delivered = info.Key, true
			return nil
		})
		if fnErr != nil {
			err = noRetry(err)
		}
		return struct{}{}, err
	})
	return err
}

func (r *retryStore) Delete(ctx context.Context, key string) error {
	_, err := retry(ctx, r, "delete", key, func() (struct{}, error) {
		actx, cancel := r.attemptContext(ctx)
		defer cancel()
		return struct{}{}, r.s.Delete(actx, key)
	})
	return err
}

// Temps is tried once: a temp file listing is only ever local.
func (r *retryStore) Temps(ctx context.Context, fn func(ObjectInfo) error) error {
	return Temps(ctx, r.s, fn)
}

func (r *retryStore) RemoveTemp(ctx context.Context, key string, notAfter time.Time) (bool, error) {
	return retry(ctx, r, "remove temp", key, func() (bool, error) {
		return RemoveTemp(ctx, r.s, key, notAfter)
	})
}

func (r *retryStore) Close() error { return r.s.Close() }

var (
	_ RangeReader = (*retryStore)(nil)
	_ Creator     = (*retryStore)(nil)
	_ TempSweeper = (*retryStore)(nil)
)
