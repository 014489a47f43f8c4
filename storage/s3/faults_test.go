package s3_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testserver"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

// faultyMinIO is MinIO behind toxiproxy: the store under test talks to
// the proxy, the test's own client to MinIO directly.
type faultyMinIO struct {
	m     *testserver.MinIOServer
	proxy *testserver.Proxy
}

func startFaultyMinIO(t *testing.T) faultyMinIO {
	m := startMinIO(t)
	tp := testserver.StartToxiproxy(t)
	return faultyMinIO{m: m, proxy: tp.Proxy(t, "minio", m.Addr)}
}

const stall = 2 * time.Second

func (f faultyMinIO) open(t *testing.T) (storage.Store, string) {
	return openStore(t, f.m.Getenv(f.proxy.URL(),
		fmt.Sprintf("WALNUT_S3_PART_SIZE=%d", partSize),
		fmt.Sprintf("WALNUT_S3_STALL_TIMEOUT=%s", stall)))
}

// blackHole stops all data through the proxy, both ways, without closing
// any connection: what a dead NAT entry or a hung server looks like.
func (f faultyMinIO) blackHole(t *testing.T) {
	for _, stream := range []string{"upstream", "downstream"} {
		f.proxy.AddToxic(t, testserver.Toxic{Name: "hole-" + stream, Type: "timeout", Stream: stream,
			Attributes: map[string]any{"timeout": 0}})
	}
}

func (f faultyMinIO) heal(t *testing.T) {
	for _, stream := range []string{"upstream", "downstream"} {
		f.proxy.RemoveToxic(t, "hole-"+stream)
	}
}

// bounded fails the test if fn takes longer than limit, and returns its
// error. fn runs in its own goroutine so a hang is reported, not waited
// for.
func bounded(t *testing.T, what string, limit time.Duration, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- fn() }()
	select {
	case err := <-done:
		t.Logf("%s: %v after %s", what, err, time.Since(start).Round(10*time.Millisecond))
		return err
	case <-time.After(limit):
		t.Errorf("%s still running after %s: a stalled connection hangs it", what, limit)
		return nil
	}
}

// A connection on which nothing moves is cut after the stall timeout, for
// every call, whether the stall comes before the request or in the middle
// of an upload or a download.
func TestStalledConnectionIsCut(t *testing.T) {
	f := startFaultyMinIO(t)
	s, _ := f.open(t)
	data := bytes.Repeat([]byte("walnut"), 2*partSize/6)
	if err := s.Put(t.Context(), "present", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put through a healthy proxy: %v", err)
	}

	// A call makes one attempt, or up to three for a part held in
	// memory, each cut after one stall, with short waits between them.
	limit := 3*stall + 10*time.Second
	f.blackHole(t)
	calls := map[string]func() error{
		"Put small": func() error { return s.Put(t.Context(), "small", strings.NewReader("x"), 1) },
		"Put multipart": func() error {
			return s.Put(t.Context(), "large", storagetest.RandomData(1, 3*partSize), -1)
		},
		"Get": func() error {
			rc, err := s.Get(t.Context(), "present")
			if err == nil {
				rc.Close()
			}
			return err
		},
		"Stat":   func() error { _, err := s.Stat(t.Context(), "present"); return err },
		"List":   func() error { return s.List(t.Context(), "", func(storage.ObjectInfo) error { return nil }) },
		"Delete": func() error { return s.Delete(t.Context(), "present") },
	}
	var wg sync.WaitGroup
	for what, call := range calls {
		wg.Go(func() {
			err := bounded(t, what, limit, call)
			if err == nil {
				t.Errorf("%s through a black hole succeeded", what)
			} else if storage.IsPermanent(err) || errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s = %v, want a plain error the retry decorator tries again", what, err)
			}
		})
	}
	wg.Wait()
	f.heal(t)

	// A download stalls halfway: the reader fails rather than blocking.
	rc, err := s.Get(t.Context(), "present")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1<<10)); err != nil {
		t.Fatal(err)
	}
	f.blackHole(t)
	err = bounded(t, "reading a stalled download", stall+10*time.Second, func() error {
		_, err := io.Copy(io.Discard, rc)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "WALNUT_S3_STALL_TIMEOUT") {
		t.Errorf("reading a stalled download = %v, want an error naming WALNUT_S3_STALL_TIMEOUT", err)
	}
	f.heal(t)
}

// An upload that stalls after its start fails instead of hanging.
func TestUploadStallingMidwayIsCut(t *testing.T) {
	f := startFaultyMinIO(t)
	s, _ := f.open(t)
	// Slow the link so the upload is still sending when the stall begins.
	f.proxy.AddToxic(t, testserver.Toxic{Name: "slow", Type: "bandwidth", Stream: "upstream",
		Attributes: map[string]any{"rate": 4096}})
	started := make(chan struct{})
	go func() {
		<-started
		time.Sleep(time.Second)
		f.blackHole(t)
	}()
	src := &signalOnRead{r: storagetest.RandomData(2, 4*partSize), started: started}
	err := bounded(t, "Put stalling midway", 3*stall+15*time.Second, func() error {
		return s.Put(t.Context(), "stalled", src, -1)
	})
	if err == nil {
		t.Fatal("Put through a link that went dead succeeded")
	}
	f.heal(t)
	if _, err := s.Stat(t.Context(), "stalled"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after a stalled Put, Stat = %v, want ErrNotFound", err)
	}
}

type signalOnRead struct {
	r       io.Reader
	started chan struct{}
	once    bool
}

func (s *signalOnRead) Read(p []byte) (int, error) {
	if !s.once {
		s.once = true
		close(s.started)
	}
	return s.r.Read(p)
}

// A slow link is no stall: a request that takes longer than the stall
// timeout, but keeps moving bytes, completes, in either direction.
//
// After the last byte of a request is written, the socket buffers on the
// way still hold data for the server, and nothing moves towards the client
// while they drain: the stall timeout has to exceed that drain time. On
// loopback the kernel lets the buffers grow to some 20 MiB, so the link
// here is slowed to 16 MB/s, not less, with a 3s stall timeout: a 64 MiB
// part then takes about 4s.
func TestSlowLinkIsNotAStall(t *testing.T) {
	const stall = 3 * time.Second
	f := startFaultyMinIO(t)
	s, _ := openStore(t, f.m.Getenv(f.proxy.URL(),
		fmt.Sprintf("WALNUT_S3_PART_SIZE=%d", 64<<20),
		fmt.Sprintf("WALNUT_S3_STALL_TIMEOUT=%s", stall)))
	for _, stream := range []string{"upstream", "downstream"} {
		f.proxy.AddToxic(t, testserver.Toxic{Name: "slow-" + stream, Type: "bandwidth", Stream: stream,
			Attributes: map[string]any{"rate": 16 << 10}})
	}
	const size = 80 << 20
	start := time.Now()
	err := bounded(t, "Put over a slow link", 2*time.Minute, func() error {
		return s.Put(t.Context(), "slow", storagetest.RandomData(3, size), -1)
	})
	if err != nil {
		t.Fatalf("Put over a slow link: %v", err)
	}
	if d := time.Since(start); d < stall+time.Second {
		t.Fatalf("the Put took %s, hardly more than the stall timeout: the link was not slow enough to prove anything", d)
	}
	start = time.Now()
	rc, err := s.Get(t.Context(), "slow")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil || n != size {
		t.Fatalf("reading over a slow link: %d bytes, %v", n, err)
	}
	if d := time.Since(start); d < stall+time.Second {
		t.Fatalf("the Get took %s, hardly more than the stall timeout", d)
	}
}

// A connection that breaks in the middle of a download, through the retry
// decorator as every command uses it: the read resumes where it broke and
// delivers the object whole once the link heals within the retry window,
// and fails, on one line, when it never does.
func TestReadResumesAfterBrokenConnection(t *testing.T) {
	f := startFaultyMinIO(t)
	inner, _ := f.open(t)
	const size = 8 << 20
	h := sha256.New()
	if err := inner.Put(t.Context(), "wal/seg", io.TeeReader(storagetest.RandomData(4, size), h), size); err != nil {
		t.Fatal(err)
	}
	want := h.Sum(nil)
	p := storage.RetryPolicy{MaxAttempts: 7, InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second}
	var logs strings.Builder
	p.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s := storage.WithRetry(inner, p)

	// read reads wal/seg over a link slowed to 4 MB/s, starting during
	// once its first MiB is in, while the read goes on: toxiproxy cannot
	// change a link whose reader has stopped. after runs before the slow
	// toxic goes: toxiproxy can hang removing a toxic from a chain whose
	// limit_data toxic has cut its link (Shopify/toxiproxy#558), so the
	// fault toxic is removed first.
	read := func(during, after func()) (int64, []byte, error) {
		f.proxy.AddToxic(t, testserver.Toxic{Name: "slow", Type: "bandwidth", Stream: "downstream",
			Attributes: map[string]any{"rate": 4096}})
		defer f.proxy.RemoveToxic(t, "slow")
		defer after()
		rc, err := s.Get(t.Context(), "wal/seg")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		defer rc.Close()
		h := sha256.New()
		w := &onceAfter{w: h, n: 1 << 20, fn: during}
		n, err := io.Copy(w, rc)
		w.wait()
		return n, h.Sum(nil), err
	}
	cut := func(t *testing.T) {
		f.proxy.AddToxic(t, testserver.Toxic{Name: "cut", Type: "limit_data", Stream: "downstream",
			Attributes: map[string]any{"bytes": 256 << 10}})
	}
	reset := func(t *testing.T) {
		f.proxy.AddToxic(t, testserver.Toxic{Name: "reset", Type: "reset_peer", Stream: "downstream",
			Attributes: map[string]any{"timeout": 0}})
	}
	for _, tt := range []struct {
		name  string
		toxic func(*testing.T)
		names string
	}{{"limit_data", cut, "cut"}, {"reset_peer", reset, "reset"}} {
		t.Run(tt.name+" clears", func(t *testing.T) {
			logs.Reset()
			start := time.Now()
			n, sum, err := read(func() {
				tt.toxic(t)
				time.Sleep(1500 * time.Millisecond)
				f.proxy.RemoveToxic(t, tt.names)
			}, func() {})
			t.Logf("read %d bytes in %s: %v; %d resumptions", n, time.Since(start).Round(time.Millisecond), err, strings.Count(logs.String(), "resuming"))
			if err != nil || n != size || !bytes.Equal(sum, want) {
				t.Fatalf("read %d bytes (SHA-256 equal: %v), %v; want the object whole", n, bytes.Equal(sum, want), err)
			}
			if !strings.Contains(logs.String(), "resuming") {
				t.Error("no resumption logged: the toxic did not break the read")
			}
		})
		t.Run(tt.name+" never clears", func(t *testing.T) {
			start := time.Now()
			n, _, err := read(func() { tt.toxic(t) }, func() { f.proxy.RemoveToxic(t, tt.names) })
			d := time.Since(start)
			t.Logf("read %d bytes in %s: %v", n, d.Round(time.Millisecond), err)
			switch {
			case err == nil:
				t.Fatal("a read through a link that never heals succeeded")
			case errors.Is(err, storage.ErrNotFound) || strings.Contains(err.Error(), "\n"):
				t.Errorf("err = %q, want one line that is not ErrNotFound", err)
			case d > time.Minute:
				t.Errorf("giving up took %s", d)
			}
		})
	}
}

// onceAfter passes writes to w and starts fn in its own goroutine once n
// bytes have passed.
type onceAfter struct {
	w    io.Writer
	n    int64
	fn   func()
	done chan struct{}
}

func (o *onceAfter) Write(p []byte) (int, error) {
	o.n -= int64(len(p))
	if o.n <= 0 && o.done == nil {
		o.done = make(chan struct{})
		go func() {
			defer close(o.done)
			o.fn()
		}()
	}
	return o.w.Write(p)
}

// wait waits for fn, if it started.
func (o *onceAfter) wait() {
	if o.done != nil {
		<-o.done
	}
}
