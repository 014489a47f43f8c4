package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

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
	s, err := s3.Open(t.Context(), u, getenv, nil)
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
		s, err := s3.Open(t.Context(), u, env, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
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

	err := s.Put(t.Context(), "broken", &storagetest.FailAfter{R: storagetest.RandomData(1, 1<<30), N: 3*partSize + 100, Err: boom}, -1)
	if !errors.Is(err, boom) {
		t.Errorf("Put from a breaking source = %v, want the source's error", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cr := &storagetest.CancelAfter{R: storagetest.RandomData(2, 1<<30), N: 2*partSize + 100, Cancel: cancel}
	if err := s.Put(ctx, "cancelled", cr, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Put = %v, want context.Canceled", err)
	}

	// Announced longer than it is, and longer than announced.
	if err := s.Put(t.Context(), "short", storagetest.RandomData(3, 2*partSize+7), 3*partSize); err == nil {
		t.Error("Put of a source shorter than announced succeeded")
	}
	if err := s.Put(t.Context(), "long", storagetest.RandomData(4, 2*partSize+7), partSize+7); err == nil {
		t.Error("Put of a source longer than announced succeeded")
	}
	if err := s.Put(t.Context(), "long-small", storagetest.RandomData(5, 100), 99); err == nil {
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

func TestMissingBucket(t *testing.T) {
	m := startMinIO(t)
	s := openPrefix(t, "s3://no-such-bucket/x", m.Getenv(""))
	storagetest.WantPermanent(t, "in a missing bucket", storagetest.EveryCall(t.Context(), s, 0),
		`s3 bucket "no-such-bucket" does not exist`, "WALNUT_PREFIX")
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
			errs := storagetest.EveryCall(t.Context(), s, 0)
			storagetest.WantPermanent(t, "with a wrong "+tt.name, errs, `s3 bucket "walnut"`, tt.check)
			for op, err := range errs {
				storagetest.NoSecret(t, op, err, wrongSecret, m.Password)
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
				if err := s.Put(t.Context(), key, io.TeeReader(storagetest.RandomData(7, n), h), -1); err != nil {
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

	h := sha256.New()
	var err error
	heap := storagetest.MeasureHeap(func() {
		err = s.Put(t.Context(), "big", io.TeeReader(storagetest.RandomData(9, size), h), -1)
	})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	growth := heap.Growth()
	t.Logf("Put of %d MiB in %d MiB parts: heap in use grew by at most %.1f MiB; %.1f MiB allocated in all",
		size>>20, partSize>>20, float64(growth)/(1<<20), float64(heap.Allocated)/(1<<20))
	limit := int64(3*partSize + 8<<20)
	if growth > limit {
		t.Errorf("heap in use grew by %d bytes during the Put, want at most %d (a few parts), whatever the object's size", growth, limit)
	}
	// Nor is each part copied: what a Put allocates does not grow with
	// the object either.
	if total := int64(heap.Allocated); total > limit {
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
	storagetest.NoSecret(t, "Put", err, m.Password)
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
	if _, err := s3.Open(t.Context(), u, m.Getenv("", "WALNUT_S3_CA_CERT_FILE="+missing), nil); err == nil || !strings.Contains(err.Error(), "WALNUT_S3_CA_CERT_FILE") {
		t.Errorf("Open with a missing CA file = %v, want an error naming WALNUT_S3_CA_CERT_FILE", err)
	}
}

// wal-push's Puts, eight at once as its pool runs them, hold next to
// nothing: no part buffer for a small object, none for a segment whose
// size is known or can be measured.
func TestWALPutsMemoryBounded(t *testing.T) {
	m := startMinIO(t)
	s, _ := openStore(t, m.Getenv(""))
	storagetest.BoundedWALPuts(t, s, 8)
}

// unrepeatable is a rewindable source whose every reading gives other bytes
// of the same length, as wal-push's encrypted stream does (a new session
// key each time).
type unrepeatable struct {
	size, off int64
	seed      byte
	r         io.Reader
}

func (u *unrepeatable) Read(p []byte) (int, error) {
	if u.r == nil {
		u.r = io.LimitReader(storagetest.RandomBytes(u.seed), u.size)
	}
	n, err := u.r.Read(p)
	u.off += int64(n)
	return n, err
}

func (u *unrepeatable) Seek(offset int64, whence int) (int64, error) {
	switch {
	case offset == 0 && whence == io.SeekCurrent:
		return u.off, nil
	case offset == 0 && whence == io.SeekStart:
		u.seed++
		u.r, u.off = nil, 0
		return 0, nil
	}
	return 0, errors.New("unsupported seek")
}

// A rewindable source that does not repeat itself cannot be vouched for
// by an MD5 taken in advance: S3 refuses the body, and Put stores it
// without one, of known size or not.
func TestUnrepeatableSource(t *testing.T) {
	m := startMinIO(t)
	const size = 3 << 20
	for _, known := range []int64{size, -1} {
		s, _ := openStore(t, m.Getenv(""))
		src := &unrepeatable{size: size}
		if err := s.Put(t.Context(), "wal/x", src, known); err != nil {
			t.Fatalf("Put (size %d): %v", known, err)
		}
		want, _ := io.ReadAll(io.LimitReader(storagetest.RandomBytes(src.seed), size))
		rc, err := s.Get(t.Context(), "wal/x")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("size %d: stored %d bytes, not the last reading's (%v)", known, len(got), err)
		}
		if src.seed < 2 {
			t.Errorf("size %d: the source was read %d times; want a reading for its MD5, one refused, one stored", known, src.seed+1)
		}
	}
}

// Create goes in one PUT: an object of unknown size larger than a part,
// from a source that cannot be rewound, is refused for good rather than
// sent as a multipart upload, and nothing is stored; one that fits in a
// part is created.
func TestCreateLimit(t *testing.T) {
	m := startMinIO(t)
	s, _ := openStore(t, m.Getenv("", fmt.Sprintf("WALNUT_S3_PART_SIZE=%d", partSize)))
	src := storagetest.OnlyReader{R: storagetest.RandomData(3, partSize+1)}
	err := storage.Create(t.Context(), s, "big", src, -1)
	if err == nil || !storage.IsPermanent(err) || errors.Is(err, storage.ErrExists) {
		t.Fatalf("Create of %d bytes of unknown size = %v, want a Permanent refusal", partSize+1, err)
	}
	if _, err := s.Stat(t.Context(), "big"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a refused Create left something: %v", err)
	}
	src = storagetest.OnlyReader{R: storagetest.RandomData(3, partSize)}
	if err := storage.Create(t.Context(), s, "big", src, -1); err != nil {
		t.Fatalf("Create of one part of unknown size: %v", err)
	}
}
