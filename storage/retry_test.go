package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/local"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

func fastPolicy() storage.RetryPolicy {
	return storage.RetryPolicy{MaxAttempts: 4, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond}
}

func seeded(t *testing.T, kv ...string) *mem.Store {
	t.Helper()
	m := mem.New()
	for i := 0; i < len(kv); i += 2 {
		if err := m.Put(t.Context(), kv[i], strings.NewReader(kv[i+1]), -1); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestRetryConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return storage.WithRetry(mem.New(), storage.DefaultRetryPolicy())
	})
}

func TestRetryTransientThenSuccess(t *testing.T) {
	var logs bytes.Buffer
	p := fastPolicy()
	p.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	for _, op := range []storagetest.Op{storagetest.OpGet, storagetest.OpStat, storagetest.OpList, storagetest.OpDelete} {
		t.Run(op.String(), func(t *testing.T) {
			logs.Reset()
			f := storagetest.NewFaulty(seeded(t, "wal/a", "aaa"), storagetest.Fault{Op: op, Times: 2})
			s := storage.WithRetry(f, p)
			var err error
			switch op {
			case storagetest.OpGet:
				var rc io.ReadCloser
				if rc, err = s.Get(t.Context(), "wal/a"); err == nil {
					rc.Close()
				}
			case storagetest.OpStat:
				_, err = s.Stat(t.Context(), "wal/a")
			case storagetest.OpList:
				err = s.List(t.Context(), "wal/", func(storage.ObjectInfo) error { return nil })
			case storagetest.OpDelete:
				err = s.Delete(t.Context(), "wal/a")
			}
			if err != nil {
				t.Fatalf("%s after two transient failures: %v", op, err)
			}
			if got := f.Calls(op); got != 3 {
				t.Errorf("%d calls, want 3", got)
			}
			if n := strings.Count(logs.String(), "level=WARN"); n != 2 || !strings.Contains(logs.String(), "wal/") || !strings.Contains(logs.String(), "injected fault") {
				t.Errorf("want two Warn records naming the key and the error, got:\n%s", logs.String())
			}
		})
	}
}

func TestRetryGivesUp(t *testing.T) {
	f := storagetest.NewFaulty(seeded(t), storagetest.Fault{Op: storagetest.OpStat})
	_, err := storage.WithRetry(f, fastPolicy()).Stat(t.Context(), "k")
	if !errors.Is(err, storagetest.ErrInjected) {
		t.Errorf("err = %v, want the injected fault", err)
	}
	if got := f.Calls(storagetest.OpStat); got != 4 {
		t.Errorf("%d calls, want MaxAttempts = 4", got)
	}
}

func TestRetryNotRetried(t *testing.T) {
	denied := storage.Permanent(errors.New("access denied"))
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		fault *storagetest.Fault
		want  error
	}{
		{"not found", t.Context(), nil, storage.ErrNotFound},
		{"permanent", t.Context(), &storagetest.Fault{Op: storagetest.OpStat, Err: denied}, denied},
		{"cancelled", cancelled, &storagetest.Fault{Op: storagetest.OpStat}, storagetest.ErrInjected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := storagetest.NewFaulty(seeded(t))
			if tt.fault != nil {
				f.Add(*tt.fault)
			}
			_, err := storage.WithRetry(f, fastPolicy()).Stat(tt.ctx, "missing")
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if got := f.Calls(storagetest.OpStat); got != 1 {
				t.Errorf("%d calls, want 1", got)
			}
		})
	}
}

func TestRetryCancelledWhileWaiting(t *testing.T) {
	f := storagetest.NewFaulty(seeded(t), storagetest.Fault{Op: storagetest.OpStat})
	p := storage.RetryPolicy{MaxAttempts: 5, InitialInterval: time.Hour, MaxInterval: time.Hour}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := storage.WithRetry(f, p).Stat(ctx, "k")
	if time.Since(start) > 10*time.Second {
		t.Errorf("Stat took %v after its context expired", time.Since(start))
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, storagetest.ErrInjected) {
		t.Errorf("err = %v, want both the deadline and the failure that caused the wait", err)
	}
	if n := strings.Count(err.Error(), "stat k:"); n != 1 {
		t.Errorf("err = %q names the call %d times, want once", err, n)
	}
}

// Every error names its call and key once, whichever way it failed: the
// backends put "op key:" in front, and the decorator adds no second one.
func TestRetryErrorsNameTheCallOnce(t *testing.T) {
	p := storage.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Hour, MaxInterval: time.Hour}
	for _, op := range []storagetest.Op{storagetest.OpGet, storagetest.OpStat, storagetest.OpList, storagetest.OpDelete, storagetest.OpPut} {
		t.Run(op.String(), func(t *testing.T) {
			f := storagetest.NewFaulty(seeded(t, "backups/k", "v"), storagetest.Fault{Op: op})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
			defer cancel()
			s := storage.WithRetry(f, p)
			var err error
			key := "backups/k"
			switch op {
			case storagetest.OpGet:
				_, err = s.Get(ctx, key)
			case storagetest.OpStat:
				_, err = s.Stat(ctx, key)
			case storagetest.OpList:
				key = "backups/"
				err = s.List(ctx, key, func(storage.ObjectInfo) error { return nil })
			case storagetest.OpDelete:
				err = s.Delete(ctx, key)
			case storagetest.OpPut:
				err = s.Put(ctx, key, strings.NewReader("v"), 1)
			}
			if err == nil {
				t.Fatal("succeeded through a fault")
			}
			if want := op.String() + " " + key + ":"; strings.Count(err.Error(), want) != 1 || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("err = %q, want it to start with %q and say it once", err, want)
			}
		})
	}
}

// onlyReader hides Seek.
type onlyReader struct{ io.Reader }

func TestRetryPutNonSeekableOnce(t *testing.T) {
	f := storagetest.NewFaulty(seeded(t), storagetest.Fault{Op: storagetest.OpPut, Times: 1, Midway: 3})
	err := storage.WithRetry(f, fastPolicy()).Put(t.Context(), "k", onlyReader{strings.NewReader("content")}, -1)
	if !errors.Is(err, storagetest.ErrInjected) {
		t.Errorf("err = %v, want the injected fault", err)
	}
	if got := f.Calls(storagetest.OpPut); got != 1 {
		t.Errorf("%d calls, want 1: the bytes read are gone", got)
	}
}

func TestRetryPutRewinds(t *testing.T) {
	m := seeded(t)
	f := storagetest.NewFaulty(m, storagetest.Fault{Op: storagetest.OpPut, Times: 2, Midway: 5})
	r := bytes.NewReader([]byte("skip:the whole object"))
	if _, err := r.Seek(5, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := storage.WithRetry(f, fastPolicy()).Put(t.Context(), "k", r, 16); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got := f.Calls(storagetest.OpPut); got != 3 {
		t.Errorf("%d calls, want 3", got)
	}
	rc, err := m.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); string(got) != "the whole object" {
		t.Errorf("stored %q, want %q", got, "the whole object")
	}
}

func TestRetryListResumes(t *testing.T) {
	f := storagetest.NewFaulty(seeded(t, "a", "1", "b", "2", "c", "3", "d", "4"),
		storagetest.Fault{Op: storagetest.OpList, Times: 1, Midway: 2})
	var seen []string
	err := storage.WithRetry(f, fastPolicy()).List(t.Context(), "", func(info storage.ObjectInfo) error {
		seen = append(seen, info.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, "") != "abcd" {
		t.Errorf("callback saw %q, want each key once, in order", seen)
	}
}

func TestRetryListCallbackErrorNotRetried(t *testing.T) {
	f := storagetest.NewFaulty(seeded(t, "a", "1"))
	stop := errors.New("stop")
	err := storage.WithRetry(f, fastPolicy()).List(t.Context(), "", func(storage.ObjectInfo) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("err = %v, want the callback's", err)
	}
	if got := f.Calls(storagetest.OpList); got != 1 {
		t.Errorf("%d calls, want 1", got)
	}
}

// slowStore's Get blocks for delay or until its context ends, and its body
// fails once that context ends, like a cloud SDK's.
type slowStore struct {
	storage.Store
	delay time.Duration
	calls atomic.Int32
	ctxs  chan context.Context
}

func (s *slowStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	s.calls.Add(1)
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	rc, err := s.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	s.ctxs <- ctx
	return struct {
		io.Reader
		io.Closer
	}{ctxBody{ctx, rc}, rc}, nil
}

type ctxBody struct {
	ctx context.Context
	r   io.Reader
}

func (b ctxBody) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	return b.r.Read(p)
}

func TestRetryGetAttemptTimeout(t *testing.T) {
	p := fastPolicy()
	p.AttemptTimeout = 20 * time.Millisecond
	p.MaxAttempts = 2
	s := &slowStore{Store: seeded(t, "k", "v"), delay: time.Hour, ctxs: make(chan context.Context, 1)}
	_, err := storage.WithRetry(s, p).Get(t.Context(), "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a timeout", err)
	}
	if got := s.calls.Load(); got != 2 {
		t.Errorf("%d calls, want 2: a timed-out attempt is retried", got)
	}
}

func TestRetryGetBodyOutlivesAttemptTimeout(t *testing.T) {
	p := fastPolicy()
	p.AttemptTimeout = 20 * time.Millisecond
	s := &slowStore{Store: seeded(t, "k", "value"), ctxs: make(chan context.Context, 1)}
	rc, err := storage.WithRetry(s, p).Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx := <-s.ctxs
	time.Sleep(3 * p.AttemptTimeout)
	got, err := io.ReadAll(rc)
	if err != nil || string(got) != "value" {
		t.Errorf("reading after the attempt timeout: %q, %v", got, err)
	}
	if ctx.Err() != nil {
		t.Errorf("body context ended before Close: %v", ctx.Err())
	}
	rc.Close()
	if ctx.Err() == nil {
		t.Error("Close did not cancel the body's context")
	}
}

func TestRetryPutHasNoAttemptTimeout(t *testing.T) {
	p := fastPolicy()
	p.AttemptTimeout = 10 * time.Millisecond
	m := mem.New()
	slow := io.MultiReader(strings.NewReader("a"), sleepyReader{50 * time.Millisecond}, strings.NewReader("b"))
	if err := storage.WithRetry(m, p).Put(t.Context(), "k", slow, -1); err != nil {
		t.Errorf("a Put slower than AttemptTimeout failed: %v", err)
	}
}

type sleepyReader struct{ d time.Duration }

func (s sleepyReader) Read([]byte) (int, error) {
	time.Sleep(s.d)
	return 0, io.EOF
}

func TestRetryCreate(t *testing.T) {
	f := storagetest.NewFaulty(seeded(t), storagetest.Fault{Op: storagetest.OpCreate, Times: 2})
	if err := storage.Create(t.Context(), storage.WithRetry(f, fastPolicy()), "walnut.json", strings.NewReader("{}"), 2); err != nil {
		t.Fatalf("Create after two transient failures: %v", err)
	}
	if got := f.Calls(storagetest.OpCreate); got != 3 {
		t.Errorf("%d Creates, want 3", got)
	}
}

// ErrExists is final: another attempt meets the same object.
func TestRetryCreateExistsNotRetried(t *testing.T) {
	f := storagetest.NewFaulty(seeded(t, "walnut.json", "theirs"))
	err := storage.Create(t.Context(), storage.WithRetry(f, fastPolicy()), "walnut.json", strings.NewReader("ours"), 4)
	if !errors.Is(err, storage.ErrExists) {
		t.Fatalf("Create of a taken key = %v, want ErrExists", err)
	}
	if got := f.Calls(storagetest.OpCreate); got != 1 {
		t.Errorf("%d Creates, want 1", got)
	}
}

// A Create whose answer was lost is tried again and meets its own object:
// the decorator hands back ErrExists, never a success it cannot vouch for.
func TestRetryCreateLostAnswer(t *testing.T) {
	m := seeded(t)
	f := storagetest.NewFaulty(m, storagetest.Fault{Op: storagetest.OpCreate, Lost: true, Times: 1})
	err := storage.Create(t.Context(), storage.WithRetry(f, fastPolicy()), "walnut.json", strings.NewReader("ours"), 4)
	if !errors.Is(err, storage.ErrExists) {
		t.Fatalf("Create whose first answer was lost = %v, want ErrExists", err)
	}
	if got := f.Calls(storagetest.OpCreate); got != 2 {
		t.Errorf("%d Creates, want 2", got)
	}
	rc, err := m.Get(t.Context(), "walnut.json")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "ours" {
		t.Errorf("walnut.json = %q, want the first attempt's", b)
	}
}

// A wrapper that hides the backend's Create fails for good, whichever
// decorator it is under.
func TestCreateWithoutCreator(t *testing.T) {
	hidden := struct{ storage.Store }{mem.New()}
	for name, s := range map[string]storage.Store{
		"retry":     storage.WithRetry(hidden, fastPolicy()),
		"ratelimit": storage.WithRateLimit(hidden, 1<<20),
		"faulty":    storagetest.NewFaulty(hidden),
		"plain":     hidden,
	} {
		err := storage.Create(t.Context(), s, "walnut.json", strings.NewReader("{}"), 2)
		if !errors.Is(err, storage.ErrNoCreate) || !storage.IsPermanent(err) {
			t.Errorf("%s: Create = %v, want a Permanent ErrNoCreate", name, err)
		}
	}
}

// Every decorator passes the temp file sweeper through; a store that
// keeps no temp files lists none and refuses to remove one.
func TestTempsThroughDecorators(t *testing.T) {
	root := t.TempDir()
	ls, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	for name, s := range map[string]storage.Store{
		"retry":     storage.WithRetry(ls, fastPolicy()),
		"ratelimit": storage.WithRateLimit(ls, 1<<20),
		"faulty":    storagetest.NewFaulty(ls),
	} {
		p := filepath.Join(root, ".tmp-"+name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		var keys []string
		if err := storage.Temps(t.Context(), s, func(oi storage.ObjectInfo) error {
			keys = append(keys, oi.Key)
			return nil
		}); err != nil || !slices.Equal(keys, []string{".tmp-" + name}) {
			t.Errorf("%s: Temps = %q, %v", name, keys, err)
		}
		if removed, err := storage.RemoveTemp(t.Context(), s, ".tmp-"+name, time.Now()); !removed || err != nil {
			t.Errorf("%s: RemoveTemp = %v, %v", name, removed, err)
		}
	}
	m := storage.WithRetry(mem.New(), fastPolicy())
	if err := storage.Temps(t.Context(), m, func(oi storage.ObjectInfo) error {
		t.Errorf("Temps of mem lists %s", oi.Key)
		return nil
	}); err != nil {
		t.Errorf("Temps of mem: %v", err)
	}
	if _, err := storage.RemoveTemp(t.Context(), m, ".tmp-1", time.Now()); err == nil || !storage.IsPermanent(err) {
		t.Errorf("RemoveTemp on mem = %v, want a Permanent refusal", err)
	}
}
