package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// resumeReset is how much an attempt must deliver before it fails for the
// failure to start a fresh count of attempts and waits. A link that moves
// this much between breaks is working, and a large partition may rightly
// meet several breaks; one that breaks every few MiB is not, and the read
// gives up after MaxAttempts however far it got.
var resumeReset int64 = 64 << 20

// resumer is the body of a Get through the retry decorator on a backend
// that reads ranges. When a read fails midway with an error another
// attempt may fix, it opens the object again at the offset already
// delivered, pinned to the version it started with, after the same
// jittered waits and within the same attempt limit as any other call. A
// caller never sees a byte twice, and never a byte of another version:
// that is ErrChanged, which is final.
type resumer struct {
	r   *retryStore
	ctx context.Context
	rr  RangeReader
	key string

	body    io.ReadCloser // nil after a failure, until the next attempt
	version string
	size    int64 // the object's size, -1 if unknown
	off     int64 // bytes delivered

	attempts  int   // attempts counted against MaxAttempts, the current one included
	sinceFail int64 // bytes the current attempt delivered
	failed    error // the failure that ended the last attempt
	wait      *backoff.ExponentialBackOff
	err       error // final: every later Read returns it
}

func (z *resumer) Read(p []byte) (int, error) {
	for z.err == nil {
		if z.body == nil {
			if err := z.resume(); err != nil {
				z.err = err
				break
			}
		}
		n, err := z.body.Read(p)
		z.off += int64(n)
		z.sinceFail += int64(n)
		if err == io.EOF && z.size >= 0 && z.off < z.size {
			err = fmt.Errorf("read %s: the body ended after %d of the object's %d bytes", z.key, z.off, z.size)
		}
		switch {
		case err == nil:
			return n, nil
		case err == io.EOF:
			z.err = io.EOF
			return n, io.EOF
		case !z.resumable(err):
			z.err = z.final(err)
			return n, z.err
		}
		z.body.Close()
		z.body, z.failed = nil, err
		if n > 0 {
			return n, nil
		}
	}
	return 0, z.err
}

// resumable reports whether a read that failed with err may go on.
func (z *resumer) resumable(err error) bool {
	if z.version == "" || !retryable(z.ctx, err) {
		return false
	}
	if z.sinceFail >= resumeReset {
		z.attempts = 1
		z.wait = nil
	}
	return z.attempts < z.r.p.MaxAttempts
}

// resume opens the object again where the last attempt stopped, after a
// wait, until an attempt opens it or the attempts run out.
func (z *resumer) resume() error {
	if z.wait == nil {
		z.wait = &backoff.ExponentialBackOff{
			InitialInterval:     z.r.p.InitialInterval,
			RandomizationFactor: backoff.DefaultRandomizationFactor,
			Multiplier:          2,
			MaxInterval:         z.r.p.MaxInterval,
		}
		z.wait.Reset()
	}
	for {
		d := z.wait.NextBackOff()
		z.r.p.Logger.Warn("storage read failed midway; resuming",
			"op", "read", "key", z.key, "offset", z.off, "size", z.size,
			"attempt", z.attempts, "max_attempts", z.r.p.MaxAttempts, "wait", d, "error", z.failed)
		t := time.NewTimer(d)
		select {
		case <-z.ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up waiting to resume: %w)", z.failed, context.Cause(z.ctx))
		case <-t.C:
		}
		z.attempts++
		z.sinceFail = 0
		if z.size >= 0 && z.off == z.size {
			// Every byte arrived; only the end did not.
			z.body = io.NopCloser(eofReader{})
			return nil
		}
		rng, err := z.r.openRange(z.ctx, z.rr, z.key, z.off, z.version)
		if err == nil {
			if rng.Version != z.version || (rng.Size >= 0 && z.size >= 0 && rng.Size != z.size) {
				rng.Body.Close()
				return Changed("read", z.key, fmt.Sprintf("version %s of %d bytes became %s of %d", z.version, z.size, rng.Version, rng.Size))
			}
			z.body = rng.Body
			return nil
		}
		switch {
		case errors.Is(err, ErrNotFound):
			return Changed("read", z.key, "deleted")
		case !retryable(z.ctx, err):
			return err
		}
		z.failed = err
		if z.attempts >= z.r.p.MaxAttempts {
			return z.final(err)
		}
	}
}

// final is the error of a read that gives up, with how far it got.
func (z *resumer) final(err error) error {
	if z.attempts < 2 || IsPermanent(err) || errors.Is(err, ErrChanged) {
		return err
	}
	return fmt.Errorf("%w (gave up after %d attempts, %d of %d bytes read)", err, z.attempts, z.off, z.size)
}

func (z *resumer) Close() error {
	if z.err == nil {
		z.err = errors.New("read after close")
	}
	if z.body == nil {
		return nil
	}
	err := z.body.Close()
	z.body = nil
	return err
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
