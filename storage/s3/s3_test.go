package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/walnut-pg/walnut/internal/testserver"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/s3"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

const bucket = "walnut"

// The smallest part S3 allows, so that a few MiB already make a
// multipart upload.
const partSize = 5 << 20

func startMinIO(t *testing.T) *testserver.MinIOServer {
	m := testserver.MinIO(t)
	m.CreateBucket(t, bucket)
	return m
}

var prefixes atomic.Int64

// openStore opens a store under a fresh prefix of the test bucket.
func openStore(t *testing.T, getenv func(string) string) (storage.Store, string) {
	t.Helper()
	prefix := fmt.Sprintf("t%d/", prefixes.Add(1))
	return openPrefix(t, "s3://"+bucket+"/"+prefix, getenv), prefix
}

func openPrefix(t *testing.T, prefix string, getenv func(string) string) storage.Store {
	t.Helper()
	u, err := url.Parse(prefix)
	if err != nil {
		t.Fatal(err)
	}
	s, err := s3.Open(t.Context(), u, getenv)
	if err != nil {
		t.Fatalf("Open %s: %v", prefix, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	m := startMinIO(t)
	env := m.Getenv("", fmt.Sprintf("WALNUT_S3_PART_SIZE=%d", partSize))
	storagetest.Run(t, func(t *testing.T) storage.Store {
		u, err := url.Parse(fmt.Sprintf("s3://%s/suite/%d/", bucket, prefixes.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		s, err := s3.Open(t.Context(), u, env)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// randomData is a reproducible stream of n bytes that is never held in
// memory whole.
type randomData struct {
	r *rand.ChaCha8
	n int64
}

func newRandomData(seed byte, n int64) *randomData {
	var s [32]byte
	s[0] = seed
	return &randomData{r: rand.NewChaCha8(s), n: n}
}

func (d *randomData) Read(p []byte) (int, error) {
	if d.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > d.n {
		p = p[:d.n]
	}
	n, _ := d.r.Read(p)
	d.n -= int64(n)
	return n, nil
}

// failAfter passes n bytes of r through, then fails.
type failAfter struct {
	r   io.Reader
	n   int64
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

// incompleteUploads lists the multipart uploads left open under prefix.
// MinIO lists uploads for one exact key or for the whole bucket, not for
// a prefix: so list them all.
func incompleteUploads(t *testing.T, m *testserver.MinIOServer, prefix string) []string {
	t.Helper()
	var ids []string
	for u := range m.Client(t).ListIncompleteUploads(t.Context(), bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("list incomplete uploads: %v", u.Err)
		}
		if strings.HasPrefix(u.Key, prefix) {
			ids = append(ids, u.Key+" "+u.UploadID)
		}
	}
	return ids
}

// A multipart upload that fails, by its source breaking or its caller
// giving up after some parts are stored, leaves neither an object nor an
// incomplete upload behind.
func TestFailedMultipartLeavesNothing(t *testing.T) {
	m := startMinIO(t)
	s, prefix := openStore(t, m.Getenv("", fmt.Sprintf("WALNUT_S3_PART_SIZE=%d", partSize)))
	boom := errors.New("source broke")

	err := s.Put(t.Context(), "broken", &failAfter{r: newRandomData(1, 1<<30), n: 3*partSize + 100, err: boom}, -1)
	if !errors.Is(err, boom) {
		t.Errorf("Put from a breaking source = %v, want the source's error", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cr := &cancelAfter{r: newRandomData(2, 1<<30), n: 2*partSize + 100, cancel: cancel}
	if err := s.Put(ctx, "cancelled", cr, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Put = %v, want context.Canceled", err)
	}

	// Announced longer than it is, and longer than announced.
	if err := s.Put(t.Context(), "short", newRandomData(3, 2*partSize+7), 3*partSize); err == nil {
		t.Error("Put of a source shorter than announced succeeded")
	}
	if err := s.Put(t.Context(), "long", newRandomData(4, 2*partSize+7), partSize+7); err == nil {
		t.Error("Put of a source longer than announced succeeded")
	}
	if err := s.Put(t.Context(), "long-small", newRandomData(5, 100), 99); err == nil {
		t.Error("Put of a small source longer than announced succeeded")
	}

	var found []string
	for obj := range m.Client(t).ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		found = append(found, obj.Key)
	}
	if len(found) != 0 {
		t.Errorf("objects after failed Puts: %q", found)
	}
	if ups := incompleteUploads(t, m, prefix); len(ups) != 0 {
		t.Errorf("incomplete uploads left behind: %q", ups)
	}
}

type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= int64(n); c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestMissingBucket(t *testing.T) {
	m := startMinIO(t)
	s := openPrefix(t, "s3://no-such-bucket/x", m.Getenv(""))
	errs := map[string]error{
		"Put":    s.Put(t.Context(), "k", strings.NewReader("v"), 1),
		"Delete": s.Delete(t.Context(), "k"),
		"List":   s.List(t.Context(), "", func(storage.ObjectInfo) error { return nil }),
	}
	_, errs["Get"] = s.Get(t.Context(), "k")
	_, errs["Stat"] = s.Stat(t.Context(), "k")
	for op, err := range errs {
		switch {
		case err == nil:
			t.Errorf("%s in a missing bucket succeeded", op)
		case errors.Is(err, storage.ErrNotFound):
			t.Errorf("%s in a missing bucket = %v, which is ErrNotFound: wal-fetch would tell PostgreSQL the archive lacks it", op, err)
		case !storage.IsPermanent(err):
			t.Errorf("%s in a missing bucket = %v, want a Permanent error", op, err)
		case !strings.Contains(err.Error(), `s3 bucket "no-such-bucket" does not exist`) || !strings.Contains(err.Error(), "WALNUT_PREFIX"):
			t.Errorf("%s in a missing bucket = %q, want it to name the bucket and WALNUT_PREFIX", op, err)
		}
	}
}

// Wrong credentials fail at once, naming what to check, and never show
// the secret.
func TestWrongCredentials(t *testing.T) {
	m := startMinIO(t)
	const wrongSecret = "wrong-S3cret-8d1e5b"
	tests := []struct {
		name  string
		env   []string
		check string
	}{
		{"secret", []string{"AWS_SECRET_ACCESS_KEY=" + wrongSecret}, "check AWS_SECRET_ACCESS_KEY"},
		{"key", []string{"AWS_ACCESS_KEY_ID=nobody"}, "check AWS_ACCESS_KEY_ID"},
		{"token", []string{"AWS_SESSION_TOKEN=" + wrongSecret}, "check AWS_SESSION_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t, m.Getenv("", tt.env...))
			errs := map[string]error{
				"Put":    s.Put(t.Context(), "k", strings.NewReader("v"), 1),
				"Delete": s.Delete(t.Context(), "k"),
				"List":   s.List(t.Context(), "", func(storage.ObjectInfo) error { return nil }),
			}
			_, errs["Get"] = s.Get(t.Context(), "k")
			_, errs["Stat"] = s.Stat(t.Context(), "k")
			for op, err := range errs {
				switch {
				case err == nil:
					t.Errorf("%s succeeded", op)
				case errors.Is(err, storage.ErrNotFound) || !storage.IsPermanent(err):
					t.Errorf("%s = %v, want a Permanent error that is not ErrNotFound", op, err)
				case !strings.Contains(err.Error(), `s3 bucket "walnut"`) || !strings.Contains(err.Error(), tt.check):
					t.Errorf("%s = %q, want it to name the bucket and %q", op, err, tt.check)
				}
				if err != nil && (strings.Contains(err.Error(), wrongSecret) || strings.Contains(err.Error(), m.Password)) {
					t.Errorf("%s error shows a secret: %q", op, err)
				}
			}
		})
	}
}

func TestServerSideEncryption(t *testing.T) {
	m := startMinIO(t)
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{"WALNUT_S3_SSE=AES256"}, "AES256"},
		{[]string{"WALNUT_S3_SSE=aws:kms", "WALNUT_S3_SSE_KMS_ID=" + testserver.MinIOKMSKey}, "aws:kms"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			s, prefix := openStore(t, m.Getenv("", append(tt.env, fmt.Sprintf("WALNUT_S3_PART_SIZE=%d", partSize))...))
			sizes := map[string]int64{"small": 1000, "multipart": 2*partSize + 1}
			for key, n := range sizes {
				h := sha256.New()
				if err := s.Put(t.Context(), key, io.TeeReader(newRandomData(7, n), h), -1); err != nil {
					t.Fatalf("Put %s: %v", key, err)
				}
				want := h.Sum(nil)
				info, err := m.Client(t).StatObject(t.Context(), bucket, prefix+key, minio.StatObjectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if got := info.Metadata.Get("X-Amz-Server-Side-Encryption"); got != tt.want {
					t.Errorf("%s stored with encryption %q, want %q", key, got, tt.want)
				}
				rc, err := s.Get(t.Context(), key)
				if err != nil {
					t.Fatal(err)
				}
				h.Reset()
				if _, err := io.Copy(h, rc); err != nil {
					t.Fatal(err)
				}
				rc.Close()
				if !bytes.Equal(h.Sum(nil), want) {
					t.Errorf("%s reads back different", key)
				}
			}
		})
	}
	t.Run("unknown KMS key", func(t *testing.T) {
		s, _ := openStore(t, m.Getenv("", "WALNUT_S3_SSE=aws:kms", "WALNUT_S3_SSE_KMS_ID=no-such-key"))
		err := s.Put(t.Context(), "k", strings.NewReader("v"), 1)
		if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "WALNUT_S3_SSE") {
			t.Errorf("Put with an unknown KMS key = %v, want a Permanent error naming WALNUT_S3_SSE", err)
		}
	})
}

func TestStorageClass(t *testing.T) {
	m := startMinIO(t)
	s, _ := openStore(t, m.Getenv("", "WALNUT_S3_STORAGE_CLASS=STANDARD"))
	if err := s.Put(t.Context(), "k", strings.NewReader("v"), 1); err != nil {
		t.Errorf("Put with storage class STANDARD: %v", err)
	}
	s, _ = openStore(t, m.Getenv("", "WALNUT_S3_STORAGE_CLASS=NO_SUCH_CLASS"))
	err := s.Put(t.Context(), "k", strings.NewReader("v"), 1)
	if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "WALNUT_S3_STORAGE_CLASS") {
		t.Errorf("Put with an unknown storage class = %v, want a Permanent error naming WALNUT_S3_STORAGE_CLASS", err)
	}
}

// An object of unknown size streams through one part buffer: memory does
// not grow with the object.
func TestUnknownSizeMemoryBounded(t *testing.T) {
	m := startMinIO(t)
	s, _ := openStore(t, m.Getenv("", fmt.Sprintf("WALNUT_S3_PART_SIZE=%d", partSize)))
	const size = 300 << 20

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	h := sha256.New()
	err := s.Put(t.Context(), "big", io.TeeReader(newRandomData(9, size), h), -1)
	close(done)
	<-sampled
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("Put of %d MiB in %d MiB parts: heap in use grew by at most %.1f MiB; %.1f MiB allocated in all",
		size>>20, partSize>>20, float64(growth)/(1<<20), float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
	limit := int64(3*partSize + 8<<20)
	if growth > limit {
		t.Errorf("heap in use grew by %d bytes during the Put, want at most %d (a few parts), whatever the object's size", growth, limit)
	}
	// Nor is each part copied: what a Put allocates does not grow with
	// the object either.
	if total := int64(after.TotalAlloc - before.TotalAlloc); total > limit {
		t.Errorf("the Put allocated %d bytes in all, want at most %d", total, limit)
	}
	info, err := s.Stat(t.Context(), "big")
	if err != nil || info.Size != size {
		t.Fatalf("Stat = %+v, %v; want size %d", info, err, size)
	}
	rc, err := s.Get(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	want := h.Sum(nil)
	h.Reset()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), want) {
		t.Error("object reads back different")
	}
}

// Without keys in the environment the standard chain is used, and its
// settings come from getenv (an envdir), not only the process
// environment.
func TestSharedCredentialsFile(t *testing.T) {
	m := startMinIO(t)
	file := filepath.Join(t.TempDir(), "credentials")
	creds := fmt.Sprintf("[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n[walnut]\naws_access_key_id = %s\naws_secret_access_key = %s\n", m.User, m.Password)
	if err := os.WriteFile(file, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(extra ...string) func(string) string {
		return m.Getenv("", append([]string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SHARED_CREDENTIALS_FILE=" + file}, extra...)...)
	}
	s, _ := openStore(t, env("AWS_PROFILE=walnut"))
	if err := s.Put(t.Context(), "k", strings.NewReader("v"), 1); err != nil {
		t.Fatalf("Put with the walnut profile: %v", err)
	}
	s, _ = openStore(t, env())
	err := s.Put(t.Context(), "k", strings.NewReader("v"), 1)
	if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") || !strings.Contains(err.Error(), "AWS_PROFILE") {
		t.Errorf("Put with the default profile's unknown key = %v, want a Permanent error pointing at the keys and AWS_PROFILE", err)
	}
	if strings.Contains(err.Error(), m.Password) {
		t.Errorf("error shows the secret: %v", err)
	}
}

// An https endpoint with its own CA works once WALNUT_S3_CA_CERT_FILE
// names the CA, and fails at once, saying so, while it does not.
func TestTLSWithCustomCA(t *testing.T) {
	m := testserver.MinIOTLS(t)
	m.CreateBucket(t, bucket)
	for _, env := range [][]string{nil, {"AWS_ENDPOINT_URL=", "WALE_S3_ENDPOINT=https+path://" + m.Addr}} {
		s, _ := openStore(t, m.Getenv("", env...))
		if err := s.Put(t.Context(), "k", strings.NewReader("v"), 1); err != nil {
			t.Fatalf("Put over https with %v: %v", env, err)
		}
		rc, err := s.Get(t.Context(), "k")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != "v" {
			t.Fatalf("Get over https = %q, %v", b, err)
		}
	}
	s, _ := openStore(t, m.Getenv("", "WALNUT_S3_CA_CERT_FILE="))
	err := s.Put(t.Context(), "k", strings.NewReader("v"), 1)
	if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "check WALNUT_S3_CA_CERT_FILE") {
		t.Errorf("Put to a server whose CA is not trusted = %v, want a Permanent error naming WALNUT_S3_CA_CERT_FILE", err)
	}
	u, _ := url.Parse("s3://" + bucket + "/x")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	if _, err := s3.Open(t.Context(), u, m.Getenv("", "WALNUT_S3_CA_CERT_FILE="+missing)); err == nil || !strings.Contains(err.Error(), "WALNUT_S3_CA_CERT_FILE") {
		t.Errorf("Open with a missing CA file = %v, want an error naming WALNUT_S3_CA_CERT_FILE", err)
	}
}
