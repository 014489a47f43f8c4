package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

const content = "0123456789abcdefghij"

func getAll(t *testing.T, s storage.Store, key string) ([]byte, error) {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	// Small reads, so that a body failing midway fails inside one.
	return io.ReadAll(io.LimitReader(struct{ io.Reader }{rc}, 1<<20))
}

// A read that breaks midway goes on from where it broke, logging each
// resumption, and hands over every byte once.
func TestRetryGetResumesMidway(t *testing.T) {
	var logs bytes.Buffer
	p := fastPolicy()
	p.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	f := storagetest.NewFaulty(seeded(t, "wal/a", content), storagetest.Fault{Op: storagetest.OpGet, Midway: 3, Times: 2})
	got, err := getAll(t, storage.WithRetry(f, p), "wal/a")
	if err != nil || string(got) != content {
		t.Fatalf("read %q, %v; want %q", got, err, content)
	}
	if n := f.Calls(storagetest.OpGet); n != 3 {
		t.Errorf("%d Get/GetRange calls, want 3", n)
	}
	if n := strings.Count(logs.String(), "resuming"); n != 2 || !strings.Contains(logs.String(), "offset=3") || !strings.Contains(logs.String(), "offset=6") {
		t.Errorf("want two Warn records, at offsets 3 and 6, got:\n%s", logs.String())
	}
}

// A read that keeps breaking gives up after MaxAttempts, however far it
// got, with the last failure on one line.
func TestRetryGetGivesUpMidway(t *testing.T) {
	f := storagetest.NewFaulty(seeded(t, "wal/a", content), storagetest.Fault{Op: storagetest.OpGet, Midway: 2})
	got, err := getAll(t, storage.WithRetry(f, fastPolicy()), "wal/a")
	if !errors.Is(err, storagetest.ErrInjected) || errors.Is(err, storage.ErrNotFound) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v, want the injected fault on one line", err)
	}
	if string(got) != content[:8] {
		t.Errorf("read %q before giving up, want %q", got, content[:8])
	}
	if n := f.Calls(storagetest.OpGet); n != 4 {
		t.Errorf("%d calls, want MaxAttempts = 4", n)
	}
	if !strings.Contains(err.Error(), "gave up after 4 attempts, 8 of 20 bytes read") {
		t.Errorf("err = %v, want it to say how far it got", err)
	}
}

// An attempt that moves enough data proves the link works: the count of
// attempts starts again after it.
func TestRetryGetProgressResetsAttempts(t *testing.T) {
	defer storage.SetResumeReset(4)()
	f := storagetest.NewFaulty(seeded(t, "wal/a", content), storagetest.Fault{Op: storagetest.OpGet, Midway: 4, Times: 4})
	got, err := getAll(t, storage.WithRetry(f, fastPolicy()), "wal/a")
	if err != nil || string(got) != content {
		t.Fatalf("read %q, %v; want %q: five attempts of 4 bytes each made progress", got, err, content)
	}
}

func TestRetryGetNotResumed(t *testing.T) {
	denied := storage.Permanent(errors.New("access denied"))
	t.Run("permanent", func(t *testing.T) {
		f := storagetest.NewFaulty(seeded(t, "wal/a", content), storagetest.Fault{Op: storagetest.OpGet, Midway: 3, Err: denied})
		if _, err := getAll(t, storage.WithRetry(f, fastPolicy()), "wal/a"); !errors.Is(err, denied) {
			t.Errorf("err = %v, want the permanent failure", err)
		}
		if n := f.Calls(storagetest.OpGet); n != 1 {
			t.Errorf("%d calls, want 1", n)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		f := storagetest.NewFaulty(seeded(t, "wal/a", content), storagetest.Fault{Op: storagetest.OpGet, Midway: 3})
		ctx, cancel := context.WithCancel(t.Context())
		rc, err := storage.WithRetry(f, fastPolicy()).Get(ctx, "wal/a")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, 3)); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := io.ReadAll(rc); err == nil {
			t.Error("read on after its caller gave up")
		}
		if n := f.Calls(storagetest.OpGet); n != 1 {
			t.Errorf("%d calls, want 1", n)
		}
	})
	t.Run("no ranges", func(t *testing.T) {
		f := storagetest.NewFaulty(seeded(t, "wal/a", content), storagetest.Fault{Op: storagetest.OpGet, Midway: 3, Times: 1})
		s := storage.WithRetry(onlyStore{f}, fastPolicy())
		if _, err := getAll(t, s, "wal/a"); !errors.Is(err, storagetest.ErrInjected) {
			t.Errorf("err = %v, want the failure: the store cannot resume", err)
		}
	})
}

// onlyStore hides GetRange.
type onlyStore struct{ storage.Store }

// shortBody's first body ends cleanly after three bytes, as a connection
// closed early without a transport error would.
type shortBody struct {
	*mem.Store
	calls int
}

func (s *shortBody) GetRange(ctx context.Context, key string, offset int64, version string) (*storage.Range, error) {
	rng, err := s.Store.GetRange(ctx, key, offset, version)
	if err == nil && s.calls == 0 {
		rng.Body = io.NopCloser(io.LimitReader(rng.Body, 3))
	}
	s.calls++
	return rng, err
}

func TestRetryGetShortBodyResumed(t *testing.T) {
	s := &shortBody{Store: seeded(t, "wal/a", content)}
	got, err := getAll(t, storage.WithRetry(s, fastPolicy()), "wal/a")
	if err != nil || string(got) != content {
		t.Fatalf("read %q, %v; want %q", got, err, content)
	}
	if s.calls != 2 {
		t.Errorf("%d calls, want 2", s.calls)
	}
}

// A read that broke after every byte had arrived ends without asking for
// an empty range, which S3 would refuse.
func TestRetryGetBrokenAtTheEnd(t *testing.T) {
	f := storagetest.NewFaulty(seeded(t, "wal/a", content), storagetest.Fault{Op: storagetest.OpGet, Midway: int64(len(content)), Times: 1})
	got, err := getAll(t, storage.WithRetry(f, fastPolicy()), "wal/a")
	if err != nil || string(got) != content {
		t.Fatalf("read %q, %v; want %q", got, err, content)
	}
	if n := f.Calls(storagetest.OpGet); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}
