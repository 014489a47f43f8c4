package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

func TestRateLimitConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return storage.WithRateLimit(mem.New(), 1<<30)
	})
}

// Timing tests assert only a generous lower bound: a loaded machine makes
// things slower, never faster. At 40 KiB/s the burst is 10 KiB, so 50 KiB
// cannot pass in under a second.
const (
	testRate  = 40 << 10
	testBytes = 50 << 10
	minTime   = 800 * time.Millisecond
)

func TestRateLimitPut(t *testing.T) {
	s := storage.WithRateLimit(mem.New(), testRate)
	data := bytes.Repeat([]byte("x"), testBytes)
	start := time.Now()
	// onlyReader: a pipe, as backup-push's partitions are.
	if err := s.Put(t.Context(), "k", onlyReader{bytes.NewReader(data)}, -1); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < minTime {
		t.Errorf("Put of %d bytes at %d B/s took %s; want at least %s", testBytes, testRate, d, minTime)
	}
	if got := readAll(t, s, "k"); !bytes.Equal(got, data) {
		t.Errorf("stored %d bytes, want %d", len(got), len(data))
	}
}

func TestRateLimitGet(t *testing.T) {
	m := mem.New()
	data := bytes.Repeat([]byte("y"), testBytes)
	if err := m.Put(t.Context(), "k", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	s := storage.WithRateLimit(m, testRate)
	start := time.Now()
	got := readAll(t, s, "k")
	if d := time.Since(start); d < minTime {
		t.Errorf("Get of %d bytes at %d B/s took %s; want at least %s", testBytes, testRate, d, minTime)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("read %d bytes, want %d", len(got), len(data))
	}
}

// The limit is for all transfers together, not per worker.
func TestRateLimitSharedByWorkers(t *testing.T) {
	s := storage.WithRateLimit(mem.New(), testRate)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	start := time.Now()
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.Put(t.Context(), string(rune('a'+i)), onlyReader{bytes.NewReader(make([]byte, testBytes/4))}, -1)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < minTime {
		t.Errorf("4 Puts of %d bytes at %d B/s together took %s; want at least %s", testBytes/4, testRate, d, minTime)
	}
}

// A seekable source stays seekable through the limiter, so the retry
// decorator below it can rewind a failed Put.
func TestRateLimitKeepsRetryRewind(t *testing.T) {
	m := mem.New()
	f := storagetest.NewFaulty(m, storagetest.Fault{Op: storagetest.OpPut, Times: 1, Midway: 5})
	s := storage.WithRateLimit(storage.WithRetry(f, fastPolicy()), 1<<20)
	data := []byte("sixteen bytes!!!")
	if err := s.Put(t.Context(), "k", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got := f.Calls(storagetest.OpPut); got != 2 {
		t.Errorf("%d Put attempts, want 2", got)
	}
	if got := readAll(t, m, "k"); !bytes.Equal(got, data) {
		t.Errorf("stored %q, want %q", got, data)
	}
}

func TestRateLimitStopsOnCancel(t *testing.T) {
	s := storage.WithRateLimit(mem.New(), 1024)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Put(ctx, "k", onlyReader{bytes.NewReader(make([]byte, 1<<20))}, -1)
	if err == nil {
		t.Fatal("a 1 MiB Put at 1 KiB/s finished within 200ms")
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("cancelled Put returned after %s", d)
	}
	if _, serr := s.Stat(t.Context(), "k"); !errors.Is(serr, storage.ErrNotFound) {
		t.Errorf("a cancelled Put left an object: %v", serr)
	}
}

func readAll(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
