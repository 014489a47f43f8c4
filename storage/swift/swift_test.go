package swift_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	ncw "github.com/ncw/swift/v2"
	"github.com/walnut-pg/walnut/internal/testserver"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/storagetest"
	"github.com/walnut-pg/walnut/storage/swift"
)

const container = "walnut"

// server is one all-in-one Swift with the test container in it.
type server struct {
	*testserver.SwiftServer
	prefixes atomic.Int64
}

func startServer(t *testing.T) *server {
	t.Helper()
	s := &server{SwiftServer: testserver.Swift(t)}
	s.CreateContainer(t, container)
	return s
}

func (s *server) env(extra ...string) func(string) string {
	m := map[string]string{}
	for _, kv := range append(s.Env(), extra...) {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// open returns a store under a prefix no other store of this server uses.
func (s *server) open(t *testing.T, extra ...string) storage.Store {
	t.Helper()
	return s.openURL(t, fmt.Sprintf("swift://%s/p%d/archive", container, s.prefixes.Add(1)), extra...)
}

func (s *server) openURL(t *testing.T, prefix string, extra ...string) storage.Store {
	t.Helper()
	u, err := url.Parse(prefix)
	if err != nil {
		t.Fatal(err)
	}
	st, err := swift.Open(t.Context(), u, s.env(extra...))
	if err != nil {
		t.Fatalf("Open %s: %v", prefix, err)
	}
	return st
}

// raw is a plain ncw/swift connection, to look behind the store's back.
func (s *server) raw(t *testing.T) *ncw.Connection {
	t.Helper()
	c := &ncw.Connection{AuthUrl: s.AuthURL, UserName: s.User, ApiKey: s.Key, AuthVersion: 1}
	if err := c.Authenticate(t.Context()); err != nil {
		t.Fatalf("raw swift connection: %v", err)
	}
	return c
}

// names lists every object in the container under prefix, segments too.
func (s *server) names(t *testing.T, prefix string) []string {
	t.Helper()
	names, err := s.raw(t).ObjectNamesAll(t.Context(), container, &ncw.ObjectsOpts{Prefix: prefix})
	if err != nil {
		t.Fatalf("list %s: %v", prefix, err)
	}
	return names
}

func TestConformance(t *testing.T) {
	s := startServer(t)
	t.Run("PlainObjects", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Store { return s.open(t) })
	})
	// Again with segments of 1 MiB, so that every object past that is a
	// static large object.
	t.Run("LargeObjects", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Store {
			return s.open(t, swift.SegmentSizeVar+"=1048576")
		})
	})
	// The suite's failed and cancelled Puts must have left no segments.
	for _, name := range s.names(t, "") {
		if _, seg, ok := strings.Cut(name, ".walnut-segments/"); ok && (strings.HasPrefix(seg, "put-cancelled") || strings.HasPrefix(seg, "wal/new")) {
			t.Errorf("a failed Put left segment %s", name)
		}
	}
}

func keys(t *testing.T, st storage.Store, prefix string) []string {
	t.Helper()
	var ks []string
	if err := st.List(t.Context(), prefix, func(info storage.ObjectInfo) error {
		ks = append(ks, info.Key)
		return nil
	}); err != nil {
		t.Fatalf("List %q: %v", prefix, err)
	}
	return ks
}

func randomBytes(seed byte, n int) []byte {
	b := make([]byte, n)
	io.ReadFull(storagetest.RandomBytes(seed), b)
	return b
}

func segmentsUnder(names []string, prefix string) []string {
	var segs []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix+".walnut-segments/") {
			segs = append(segs, n)
		}
	}
	return segs
}

// TestLargeObjects covers what the conformance suite cannot see: segments,
// their cleanup, and memory.
func TestLargeObjects(t *testing.T) {
	s := startServer(t)
	t.Run("RoundTrip", func(t *testing.T) { testLargeRoundTrip(t, s) })
	t.Run("FailedPutLeavesNothing", func(t *testing.T) { testFailedLargePut(t, s) })
	t.Run("MemoryIsBounded", func(t *testing.T) { testPutMemoryIsBounded(t, s) })
}

func testLargeRoundTrip(t *testing.T, s *server) {
	const seg = 1 << 20
	data := randomBytes(1, 5*seg+12345)
	for _, tt := range []struct {
		name string
		size int64
	}{{"KnownSize", int64(len(data))}, {"UnknownSize", -1}} {
		t.Run(tt.name, func(t *testing.T) {
			prefix := fmt.Sprintf("large-%s/", tt.name)
			st := s.openURL(t, "swift://"+container+"/"+prefix, fmt.Sprintf("%s=%d", swift.SegmentSizeVar, seg))
			defer st.Close()
			if err := st.Put(t.Context(), "backups/b1/part_0001", storagetest.OnlyReader{R: bytes.NewReader(data)}, tt.size); err != nil {
				t.Fatalf("Put: %v", err)
			}
			segs := segmentsUnder(s.names(t, prefix), prefix)
			if len(segs) != 6 {
				t.Errorf("want 6 segments of at most 1 MiB, found %q", segs)
			}
			if got := keys(t, st, ""); !slices.Equal(got, []string{"backups/b1/part_0001"}) {
				t.Errorf("List = %q, want only the manifest's key", got)
			}
			info, err := st.Stat(t.Context(), "backups/b1/part_0001")
			if err != nil || info.Size != int64(len(data)) {
				t.Errorf("Stat = %+v, %v; want size %d", info, err, len(data))
			}
			var listed int64
			st.List(t.Context(), "backups/", func(info storage.ObjectInfo) error { listed = info.Size; return nil })
			if listed != int64(len(data)) {
				t.Errorf("List gives size %d, want %d", listed, len(data))
			}
			rc, err := st.Get(t.Context(), "backups/b1/part_0001")
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			if cerr := rc.Close(); err == nil {
				err = cerr
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Get returned %d bytes (err %v), want the %d put", len(got), err, len(data))
			}

			// Overwriting with a small object removes the old segments.
			if err := st.Put(t.Context(), "backups/b1/part_0001", strings.NewReader("small"), 5); err != nil {
				t.Fatal(err)
			}
			if segs := segmentsUnder(s.names(t, prefix), prefix); len(segs) != 0 {
				t.Errorf("overwrite left the old segments: %q", segs)
			}
			// And a large object deleted takes its segments along.
			if err := st.Put(t.Context(), "backups/b1/part_0001", bytes.NewReader(data), tt.size); err != nil {
				t.Fatal(err)
			}
			if err := st.Delete(t.Context(), "backups/b1/part_0001"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if names := s.names(t, prefix); len(names) != 0 {
				t.Errorf("Delete left %q", names)
			}
		})
	}
}

func testFailedLargePut(t *testing.T, s *server) {
	const seg = 1 << 20
	prefix := "failed/"
	st := s.openURL(t, "swift://"+container+"/"+prefix, fmt.Sprintf("%s=%d", swift.SegmentSizeVar, seg))
	defer st.Close()
	if err := st.Put(t.Context(), "keep", strings.NewReader("old"), 3); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("source broke")
	data := randomBytes(2, 8*seg)
	for _, size := range []int64{-1, int64(len(data))} {
		for _, key := range []string{"new", "keep"} {
			r := &storagetest.FailAfter{R: bytes.NewReader(data), N: 3*seg + 100, Err: boom}
			err := st.Put(t.Context(), key, r, size)
			if err == nil {
				t.Fatalf("Put %s (size %d) from a failing reader succeeded", key, size)
			}
			if storage.IsPermanent(err) {
				t.Errorf("Put %s: a source failure is marked permanent: %v", key, err)
			}
		}
		// A source longer than announced fails before anything is stored.
		if err := st.Put(t.Context(), "new", bytes.NewReader(data), int64(len(data))-seg); err == nil {
			t.Errorf("Put of %d bytes announced as %d succeeded", len(data), len(data)-seg)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &storagetest.CancelAfter{R: bytes.NewReader(data), N: 4 * seg, Cancel: cancel}
	if err := st.Put(ctx, "new", r, -1); err == nil {
		t.Error("Put cancelled midway succeeded")
	}
	if got := s.names(t, prefix); !slices.Equal(got, []string{prefix + "keep"}) {
		t.Errorf("after failed Puts the container holds %q, want only %skeep", got, prefix)
	}
}

// testPutMemoryIsBounded streams 256 MiB of unknown size and checks that
// the store allocated nowhere near that much.
func testPutMemoryIsBounded(t *testing.T, s *server) {
	for _, segment := range []string{"", swift.SegmentSizeVar + "=8388608"} {
		t.Run(fmt.Sprintf("segment=%q", segment), func(t *testing.T) {
			st := s.open(t, segment)
			defer st.Close()
			const size = 256 << 20
			src := storagetest.RandomData(3, size)
			h := sha256.New()
			var err error
			heap := storagetest.MeasureHeap(func() {
				err = st.Put(t.Context(), "big", io.TeeReader(src, h), -1)
			})
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if alloc := heap.Allocated; alloc > 32<<20 {
				t.Errorf("Put of %d MiB allocated %d MiB, want at most 32", size>>20, alloc>>20)
			}
			want := h.Sum(nil)
			rc, err := st.Get(t.Context(), "big")
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			h.Reset()
			if n, err := io.Copy(h, rc); err != nil || n != size || !bytes.Equal(h.Sum(nil), want) {
				t.Errorf("read back %d bytes (err %v), SHA-256 match %v", n, err, bytes.Equal(h.Sum(nil), want))
			}
		})
	}
}

// wal-push's Puts, eight at once as its pool runs them, hold next to
// nothing: a segment's size is known, or measured from its rewindable
// source, and it goes up in one streamed PUT.
func TestWALPutsMemoryBounded(t *testing.T) {
	s := startServer(t)
	st := s.open(t)
	defer st.Close()
	storagetest.BoundedWALPuts(t, st, 8)
}

// TestErrors: what no retry can fix fails at once, as one line that names
// what to check, and never with a secret in it.
func TestErrors(t *testing.T) {
	s := startServer(t)
	t.Run("MissingContainer", func(t *testing.T) { testMissingContainer(t, s) })
	t.Run("WrongPassword", func(t *testing.T) { testWrongPassword(t, s) })
	t.Run("Forbidden", func(t *testing.T) { testForbidden(t, s) })
	t.Run("OpenStackNames", func(t *testing.T) { testOpenStackNames(t, s) })
}

// testOpenStackNames: OS_* variables work alone, and errors name them.
func testOpenStackNames(t *testing.T, s *server) {
	u, err := url.Parse("swift://" + container + "/os")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ password, wantErr string }{
		{s.Key, ""},
		{"hunter2-distinctive-secret", "check OS_USERNAME and OS_PASSWORD"},
	} {
		env := map[string]string{"OS_AUTH_URL": s.AuthURL, "OS_USERNAME": s.User, "OS_PASSWORD": tt.password}
		st, err := swift.Open(t.Context(), u, func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		err = st.Put(t.Context(), "k", strings.NewReader("x"), 1)
		st.Close()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("Put with OS_* credentials: %v", err)
		case tt.wantErr != "" && (err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), tt.password)):
			t.Errorf("Put with a wrong OS_PASSWORD = %v, want a permanent error with %q and without the password", err, tt.wantErr)
		}
	}
}

func testMissingContainer(t *testing.T, s *server) {
	st := s.openURL(t, "swift://no-such-container/x")
	defer st.Close()
	storagetest.WantPermanent(t, "in a missing container", storagetest.EveryCall(t.Context(), st, 0),
		`"no-such-container"`, "WALNUT_PREFIX")
}

func testWrongPassword(t *testing.T, s *server) {
	const secret = "hunter2-distinctive-secret"
	st := s.openURL(t, "swift://"+container+"/x", "SWIFT_PASSWORD="+secret)
	defer st.Close()
	_, err := st.Stat(t.Context(), "k")
	switch {
	case err == nil:
		t.Fatal("Stat with a wrong password succeeded")
	case !storage.IsPermanent(err):
		t.Errorf("Stat = %v, want a permanent error", err)
	case strings.Contains(err.Error(), secret):
		t.Errorf("error leaks the password: %v", err)
	case !strings.Contains(err.Error(), "SWIFT_PASSWORD") || !strings.Contains(err.Error(), "SWIFT_USER") || !strings.Contains(err.Error(), `"`+container+`"`):
		t.Errorf("Stat = %q, want it to name the container, SWIFT_USER and SWIFT_PASSWORD", err)
	case strings.Contains(err.Error(), "\n"):
		t.Errorf("error is not one line: %q", err)
	}
	t.Logf("wrong password: %v", err)
}

func testForbidden(t *testing.T, s *server) {
	st := s.openURL(t, "swift://"+container+"/x", "SWIFT_USER="+s.NoAccessUser, "SWIFT_PASSWORD="+s.NoAccessKey)
	defer st.Close()
	errs := map[string]error{
		"Put":  st.Put(t.Context(), "k", strings.NewReader("x"), 1),
		"List": st.List(t.Context(), "", func(storage.ObjectInfo) error { return nil }),
	}
	_, errs["Stat"] = st.Stat(t.Context(), "k")
	for op, err := range errs {
		if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), `"`+container+`"`) || !strings.Contains(err.Error(), "SWIFT_USER") {
			t.Errorf("%s by a user without rights = %v, want a permanent error naming the container and SWIFT_USER", op, err)
		}
	}
}
