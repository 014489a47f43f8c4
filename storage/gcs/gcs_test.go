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
	"net/url"
	"os"
	"path/filepath"
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

// everyCall runs each Store method once, a streamed Put of several chunks
// too, and returns their errors by name.
func everyCall(ctx context.Context, s storage.Store) map[string]error {
	return storagetest.EveryCall(ctx, s, 10<<20)
}

func TestMissingBucketIsPermanent(t *testing.T) {
	f := testserver.StartFakeGCS(t)
	s := newStore(t, emulatorConfig(f, "nosuchbucket", "p/"))
	errs := everyCall(t.Context(), s)
	if errs["Delete"] == nil {
		// Deleting a missing key is no error, and a missing bucket holds
		// no keys.
		delete(errs, "Delete")
	}
	storagetest.WantPermanent(t, "on a missing bucket", errs, `bucket "nosuchbucket" does not exist`)
}

// The suite's failed Puts fit in one chunk; this one fails after several
// chunks were sent, which must leave the old object as it was and no new
// one.
func TestFailedMultiChunkPutLeavesNothing(t *testing.T) {
	f := testserver.StartFakeGCS(t)
	f.CreateBucket(t, "walnut")
	cfg := emulatorConfig(f, "walnut", "p/")
	cfg.ChunkSize = 256 << 10
	storagetest.FailedLargePut(t, newStore(t, cfg), 3<<20+5)
}

// Memory for an upload of unknown size stays at the chunk buffer, whatever
// the object's size.
func TestLargeUnknownSizePutHasBoundedMemory(t *testing.T) {
	f := testserver.StartFakeGCS(t)
	f.CreateBucket(t, "walnut")
	for _, size := range []int64{64 << 20, 256 << 20} {
		s := newStore(t, emulatorConfig(f, "walnut", "p/"))
		storagetest.BoundedUnknownSizePut(t, s, size, 64<<20, fmt.Sprintf("chunk %d MiB", gcs.DefaultChunkSize>>20))
		s.Close()
	}
}

// wal-push's Puts, eight at once as its pool runs them, hold no chunk
// buffers: a segment's size is known, or measured from its rewindable
// source, and it goes up in one streamed request.
func TestWALPutsMemoryBounded(t *testing.T) {
	f := testserver.StartFakeGCS(t)
	f.CreateBucket(t, "walnut")
	storagetest.BoundedWALPuts(t, newStore(t, emulatorConfig(f, "walnut", "wal/")), 8)
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
	storagetest.WantRetryable(t, "against a dead server", everyCall(t.Context(), s))
	if d := time.Since(start); d > time.Minute {
		t.Errorf("six calls against a dead server took %s", d)
	}
}

// A service that stops answering fails every call after the I/O timeout
// and the library's few attempts, as a retryable error, instead of hanging.
func TestStalledServiceFailsEveryCall(t *testing.T) {
	cfg := gcs.Config{
		Bucket:             "walnut",
		Endpoint:           "http://" + storagetest.SilentServer(t),
		IOTimeout:          500 * time.Millisecond,
		MaxAttempts:        2,
		ChunkRetryDeadline: 2 * time.Second,
	}
	s := newStore(t, cfg)
	defer s.Close()
	start := time.Now()
	storagetest.WantRetryable(t, "against a stalled service", everyCall(t.Context(), s))
	if d := time.Since(start); d > time.Minute {
		t.Errorf("six calls against a stalled service took %s", d)
	}
}

// Objects of several chunks, of known and unknown size, round-trip through
// a resumable upload whose chunks the service acknowledges with 308
// ("resume incomplete"); a size of whole chunks ends on a full last chunk.
func TestMultiChunkPut(t *testing.T) {
	f := testserver.StartFakeGCS(t)
	f.CreateBucket(t, "walnut")
	cfg := emulatorConfig(f, "walnut", "p/")
	cfg.ChunkSize = 256 << 10
	s := newStore(t, cfg)
	defer s.Close()
	for _, size := range []int64{256 << 10, 256<<10 + 1, 3 << 20, 3<<20 + 12345} {
		for _, known := range []bool{true, false} {
			key := fmt.Sprintf("multi/%d-%v", size, known)
			want, err := io.ReadAll(storagetest.RandomData(byte(size), size))
			if err != nil {
				t.Fatal(err)
			}
			putSize := size
			if !known {
				putSize = -1
			}
			if err := s.Put(t.Context(), key, storagetest.OnlyReader{R: bytes.NewReader(want)}, putSize); err != nil {
				t.Fatalf("Put %s: %v", key, err)
			}
			rc, err := s.Get(t.Context(), key)
			if err != nil {
				t.Fatalf("Get %s: %v", key, err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("Get %s: %d bytes, %v; want the %d bytes put", key, len(got), err, size)
			}
		}
	}
}

// A Create of unknown size from a source that cannot be rewound goes up
// as a resumable upload in chunks, and is still conditional: the session
// is started with ifGenerationMatch=0, which fake-gcs-server honours.
func TestChunkedCreate(t *testing.T) {
	f := testserver.StartFakeGCS(t)
	f.CreateBucket(t, "walnut")
	cfg := emulatorConfig(f, "walnut", "p/")
	cfg.ChunkSize = 256 << 10
	s := newStore(t, cfg)
	defer s.Close()
	want, err := io.ReadAll(storagetest.RandomData(12, 1<<20+3))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(t.Context(), "big", storagetest.OnlyReader{R: bytes.NewReader(want)}, -1); err != nil {
		t.Fatalf("chunked Create of a new name: %v", err)
	}
	other := bytes.Clone(want)
	other[0] ^= 0xff
	err = s.Create(t.Context(), "big", storagetest.OnlyReader{R: bytes.NewReader(other)}, -1)
	if !errors.Is(err, storage.ErrExists) || !storage.IsPermanent(err) {
		t.Fatalf("chunked Create of a taken name = %v, want a Permanent ErrExists", err)
	}
	rc, err := s.Get(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("after a refused chunked Create: %d bytes, %v; want the first Create's", len(got), err)
	}
}
