package gcs_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testserver"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/gcs"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

func emulatorConfig(f *testserver.FakeGCS, bucket, prefix string) gcs.Config {
	return gcs.Config{
		Bucket:      bucket,
		Prefix:      prefix,
		Endpoint:    f.URL,
		MaxAttempts: 2,
		IOTimeout:   30 * time.Second,
	}
}

func newStore(t *testing.T, cfg gcs.Config) *gcs.Store {
	t.Helper()
	s, err := gcs.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	f := testserver.StartFakeGCS(t)
	f.CreateBucket(t, "walnut")
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return newStore(t, emulatorConfig(f, "walnut", fmt.Sprintf("suite/%d/", n.Add(1))))
	})
}

// everyCall runs each Store method once and returns their errors by name.
func everyCall(ctx context.Context, s storage.Store) map[string]error {
	errs := map[string]error{}
	errs["Put"] = s.Put(ctx, "wal/x", strings.NewReader("x"), 1)
	errs["PutStream"] = s.Put(ctx, "wal/y", io.LimitReader(randBytes(1), 10<<20), -1)
	rc, err := s.Get(ctx, "wal/x")
	if err == nil {
		rc.Close()
	}
	errs["Get"] = err
	_, errs["Stat"] = s.Stat(ctx, "wal/x")
	errs["List"] = s.List(ctx, "", func(storage.ObjectInfo) error { return nil })
	errs["Delete"] = s.Delete(ctx, "wal/x")
	return errs
}

func TestMissingBucketIsPermanent(t *testing.T) {
	f := testserver.StartFakeGCS(t)
	s := newStore(t, emulatorConfig(f, "nosuchbucket", "p/"))
	for op, err := range everyCall(t.Context(), s) {
		t.Logf("%s: %v", op, err)
		if op == "Delete" && err == nil {
			// Deleting a missing key is no error, and a missing bucket
			// holds no keys.
			continue
		}
		switch {
		case err == nil:
			t.Errorf("%s on a missing bucket succeeded", op)
		case errors.Is(err, storage.ErrNotFound):
			t.Errorf("%s on a missing bucket = %v, which is ErrNotFound: wal-fetch would end recovery early", op, err)
		case !storage.IsPermanent(err):
			t.Errorf("%s on a missing bucket = %v, want a Permanent error", op, err)
		case !strings.Contains(err.Error(), `bucket "nosuchbucket" does not exist`):
			t.Errorf("%s error %q does not name the bucket", op, err)
		}
	}
}

// failAfter yields n bytes of src, then fails.
type failAfter struct {
	r   io.Reader
	n   int
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// The suite's failed Puts fit in one chunk; this one fails after several
// chunks were sent, which must leave the old object as it was and no new
// one.
func TestFailedMultiChunkPutLeavesNothing(t *testing.T) {
	f := testserver.StartFakeGCS(t)
	f.CreateBucket(t, "walnut")
	cfg := emulatorConfig(f, "walnut", "p/")
	cfg.ChunkSize = 256 << 10
	s := newStore(t, cfg)
	ctx := t.Context()
	if err := s.Put(ctx, "wal/seg", strings.NewReader("old content"), -1); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("compression pipeline broke")
	for _, key := range []string{"wal/seg", "wal/new"} {
		src := &failAfter{r: randBytes(3), n: 3<<20 + 5, err: boom}
		if err := s.Put(ctx, key, src, -1); !errors.Is(err, boom) {
			t.Errorf("Put %s from a failing reader = %v, want the reader's error", key, err)
		}
	}
	rc, err := s.Get(ctx, "wal/seg")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "old content" {
		t.Errorf("after failed Put, wal/seg holds %d bytes, want the old content", len(got))
	}
	if _, err := s.Stat(ctx, "wal/new"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat wal/new after a failed Put = %v, want ErrNotFound", err)
	}
	var keys []string
	s.List(ctx, "", func(info storage.ObjectInfo) error { keys = append(keys, info.Key); return nil })
	if strings.Join(keys, ",") != "wal/seg" {
		t.Errorf("List after failed Puts = %q, want only wal/seg", keys)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 5<<16)
	if err := s.Put(ctx, "wal/new", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	rc, err = s.Get(ctx, "wal/new")
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Errorf("Put after a failed one stored %d bytes, want %d", len(got), len(data))
	}
}

// Memory for an upload of unknown size stays at the chunk buffer, whatever
// the object's size.
func TestLargeUnknownSizePutHasBoundedMemory(t *testing.T) {
	f := testserver.StartFakeGCS(t)
	f.CreateBucket(t, "walnut")
	for _, size := range []int64{64 << 20, 256 << 20} {
		s := newStore(t, emulatorConfig(f, "walnut", "p/"))
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		peak := heapPeak(t, func() {
			if err := s.Put(t.Context(), "big", io.LimitReader(randBytes(7), size), -1); err != nil {
				t.Fatal(err)
			}
		})
		grew := int64(peak) - int64(base.HeapInuse)
		t.Logf("Put of %d MiB of unknown size: peak heap in use %.1f MiB above the %.1f MiB before (chunk %d MiB)",
			size>>20, float64(grew)/(1<<20), float64(base.HeapInuse)/(1<<20), gcs.DefaultChunkSize>>20)
		if limit := int64(64 << 20); grew > limit {
			t.Errorf("Put of %d MiB grew the heap by %d MiB, want under %d MiB", size>>20, grew>>20, limit>>20)
		}
		info, err := s.Stat(t.Context(), "big")
		if err != nil || info.Size != size {
			t.Errorf("Stat = %+v, %v; want size %d", info, err, size)
		}
		s.Close()
	}
}

// heapPeak runs fn and returns the highest HeapInuse sampled meanwhile.
func heapPeak(t *testing.T, fn func()) uint64 {
	t.Helper()
	done := make(chan struct{})
	peakc := make(chan uint64)
	go func() {
		var peak uint64
		var m runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-done:
				peakc <- peak
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(done)
	return <-peakc
}

func TestOpenFromEnv(t *testing.T) {
	f := testserver.StartFakeGCS(t)
	f.CreateBucket(t, "walnut")
	// host:port, as the Google libraries take it.
	env := map[string]string{"STORAGE_EMULATOR_HOST": strings.TrimPrefix(f.URL, "http://")}
	u, _ := url.Parse("gs://walnut/from/env/")
	s, err := gcs.Open(t.Context(), u, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(t.Context(), "k", strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
	s2 := newStore(t, emulatorConfig(f, "walnut", "from/"))
	defer s2.Close()
	if info, err := s2.Stat(t.Context(), "env/k"); err != nil || info.Size != 1 {
		t.Errorf("Stat from/env/k = %+v, %v", info, err)
	}
}

// A credentials file that cannot yield a token fails every call at once
// with one line naming the variable, and never shows the key; a token
// endpoint that cannot be reached is worth retrying.
func TestBadCredentialsFile(t *testing.T) {
	const secret = "HUNTER2privateKEY"
	dir := t.TempDir()
	// The token endpoint is a dead local port: nothing leaves the machine.
	tokenURI := "http://127.0.0.1:" + fmt.Sprint(testserver.FreePort(t)) + "/token"
	serviceAccount := func(name, pemKey string) string {
		sa, _ := json.Marshal(map[string]string{
			"type": "service_account", "project_id": "p", "private_key_id": "k", "private_key": pemKey,
			"client_email": "walnut@p.iam.gserviceaccount.com", "client_id": "1", "token_uri": tokenURI,
		})
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, sa, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	badKey := serviceAccount("bad-key.json", "-----BEGIN PRIVATE KEY-----\n"+secret+"\n-----END PRIVATE KEY-----\n")
	key, err := rsa.GenerateKey(crand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	goodKey := serviceAccount("good-key.json", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	notJSON := filepath.Join(dir, "garbage")
	if err := os.WriteFile(notJSON, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{badKey, goodKey, notJSON, filepath.Join(dir, "missing.json")} {
		u, _ := url.Parse("gs://walnut/p")
		env := map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": file}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		cfg, err := gcs.ConfigFromEnv(u, func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		cfg.ChunkRetryDeadline = time.Second
		cfg.MaxAttempts = 2
		s, err := gcs.New(ctx, cfg)
		var errs map[string]error
		if err != nil {
			errs = map[string]error{"Open": err}
		} else {
			errs = everyCall(ctx, s)
			s.Close()
		}
		cancel()
		for op, err := range errs {
			t.Logf("%s with %s: %v", op, filepath.Base(file), err)
			switch {
			case err == nil:
				t.Errorf("%s with credentials file %s succeeded", op, filepath.Base(file))
			case strings.Contains(err.Error(), secret):
				t.Errorf("%s error leaks the private key: %v", op, err)
			case strings.Contains(err.Error(), "\n"):
				t.Errorf("%s error is more than one line: %q", op, err)
			case !strings.Contains(err.Error(), "GOOGLE_APPLICATION_CREDENTIALS"):
				t.Errorf("%s error %q does not name GOOGLE_APPLICATION_CREDENTIALS", op, err)
			case file == goodKey && storage.IsPermanent(err):
				t.Errorf("%s with an unreachable token endpoint = %v; want it retried", op, err)
			case file != goodKey && !storage.IsPermanent(err):
				t.Errorf("%s with a broken credentials file = %v, want a Permanent error", op, err)
			}
		}
	}
}

// Against a server that is down, every call gives up after its attempts,
// as a retryable error, instead of waiting for the server to come back:
// the library would retry starting an upload for as long as its context
// lasts, and a Put has no deadline.
func TestDeadServerFailsPromptly(t *testing.T) {
	cfg := gcs.Config{
		Bucket:             "walnut",
		Endpoint:           "http://127.0.0.1:" + fmt.Sprint(testserver.FreePort(t)),
		MaxAttempts:        3,
		ChunkRetryDeadline: 5 * time.Second,
	}
	s := newStore(t, cfg)
	defer s.Close()
	start := time.Now()
	for op, err := range everyCall(t.Context(), s) {
		t.Logf("%s: %v", op, err)
		if err == nil || storage.IsPermanent(err) || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s against a dead server = %v, want a retryable error", op, err)
		}
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("six calls against a dead server took %s", d)
	}
}

// randBytes is an endless deterministic stream of incompressible bytes.
func randBytes(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// silentServer accepts connections and never answers, like a host whose
// network went away mid-call.
func silentServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 64)
	t.Cleanup(func() {
		l.Close()
		for len(held) > 0 {
			(<-held).Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	return l.Addr().String()
}

// A service that stops answering fails every call after the I/O timeout
// and the library's few attempts, as a retryable error, instead of hanging.
func TestStalledServiceFailsEveryCall(t *testing.T) {
	cfg := gcs.Config{
		Bucket:             "walnut",
		Endpoint:           "http://" + silentServer(t),
		IOTimeout:          500 * time.Millisecond,
		MaxAttempts:        2,
		ChunkRetryDeadline: 2 * time.Second,
	}
	s := newStore(t, cfg)
	defer s.Close()
	start := time.Now()
	for op, err := range everyCall(t.Context(), s) {
		t.Logf("%s: %v", op, err)
		if err == nil || storage.IsPermanent(err) || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s against a stalled service = %v, want a retryable error", op, err)
		}
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("six calls against a stalled service took %s", d)
	}
}
