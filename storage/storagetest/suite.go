// Package storagetest holds what every storage backend is tested with: the
// conformance suite Run, Faulty, a store that fails on purpose, and the
// helpers the backends' own tests share (failing and cancelling readers,
// random data, heap measurement, a silent server, checks on the errors of
// every call).
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/storage"
)

// Run is the conformance suite: a backend is done when it passes. newStore
// must return an empty store that no other subtest uses (a fresh directory,
// or a unique prefix in a bucket) and arrange its own cleanup.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyObject", testEmptyObject},
		{"KeyCharacters", testKeyCharacters},
		{"LargeUnknownSize", testLargeUnknownSize},
		{"KnownSize", testKnownSize},
		{"Overwrite", testOverwrite},
		{"Missing", testMissing},
		{"DeleteMissing", testDeleteMissing},
		{"DeleteThenGet", testDeleteThenGet},
		{"ListPrefix", testListPrefix},
		{"ListMany", testListMany},
		{"ListStop", testListStop},
		{"FailedPut", testFailedPut},
		{"Cancelled", testCancelled},
		{"Ranges", testRanges},
		{"ResumedRead", testResumedRead},
		{"ChangedWhileRead", testChangedWhileRead},
		{"DeletedWhileRead", testDeletedWhileRead},
		{"Create", testCreate},
		{"CreateExisting", testCreateExisting},
		{"CreateFailed", testCreateFailed},
		{"CreateRace", testCreateRace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

func put(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
}

func get(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("close %s: %v", key, err)
	}
	return data
}

func list(t *testing.T, s storage.Store, prefix string) []storage.ObjectInfo {
	t.Helper()
	var infos []storage.ObjectInfo
	err := s.List(t.Context(), prefix, func(info storage.ObjectInfo) error {
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		t.Fatalf("List %q: %v", prefix, err)
	}
	return infos
}

func keys(infos []storage.ObjectInfo) []string {
	out := make([]string, 0, len(infos))
	for _, info := range infos {
		out = append(out, info.Key)
	}
	return out
}

func wantMissing(t *testing.T, s storage.Store, key string) {
	t.Helper()
	if rc, err := s.Get(t.Context(), key); !errors.Is(err, storage.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Get %s: err = %v, want ErrNotFound", key, err)
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat %s: err = %v, want ErrNotFound", key, err)
	}
}

func testRoundTrip(t *testing.T, s storage.Store) {
	const key = "backups/base_000000010000000000000002_00000028/part_0001.tar.zst"
	data := []byte("some bytes\x00\xff of a partition")
	before := time.Now()
	put(t, s, key, data)
	if got := get(t, s, key); !bytes.Equal(got, data) {
		t.Errorf("Get = %q, want %q", got, data)
	}
	info, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Key != key || info.Size != int64(len(data)) {
		t.Errorf("Stat = %+v, want key %s size %d", info, key, len(data))
	}
	// Object stores stamp ModTime with their own clock: allow for skew.
	if d := info.ModTime.Sub(before); d < -time.Hour || d > time.Hour {
		t.Errorf("Stat ModTime = %v, want close to %v", info.ModTime, before)
	}
}

func testEmptyObject(t *testing.T, s storage.Store) {
	put(t, s, "empty", nil)
	if err := s.Put(t.Context(), "empty-unknown", strings.NewReader(""), -1); err != nil {
		t.Fatalf("Put of empty object with unknown size: %v", err)
	}
	for _, key := range []string{"empty", "empty-unknown"} {
		if got := get(t, s, key); len(got) != 0 {
			t.Errorf("Get %s = %q, want empty", key, got)
		}
		info, err := s.Stat(t.Context(), key)
		if err != nil || info.Size != 0 {
			t.Errorf("Stat %s = %+v, %v; want size 0", key, info, err)
		}
	}
	if got := keys(list(t, s, "empty")); strings.Join(got, ",") != "empty,empty-unknown" {
		t.Errorf("List = %q, want both empty objects", got)
	}
}

// testKeyCharacters catches backends that forget to escape keys in URLs.
func testKeyCharacters(t *testing.T, s storage.Store) {
	ks := []string{"odd/a b", "odd/a+b", "odd/a%20b", "odd/a=b&c", "odd/a:b~c", "odd/é€", "odd/a?b#c"}
	for i, key := range ks {
		put(t, s, key, []byte{byte(i)})
	}
	for i, key := range ks {
		if got := get(t, s, key); !bytes.Equal(got, []byte{byte(i)}) {
			t.Errorf("Get %q = %v, want %v", key, got, []byte{byte(i)})
		}
	}
	want := slices.Sorted(slices.Values(ks))
	if got := keys(list(t, s, "odd/")); !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
}

func testLargeUnknownSize(t *testing.T, s storage.Store) {
	const key = "wal/big"
	const size = 40 << 20
	h := sha256.New()
	if err := s.Put(t.Context(), key, io.TeeReader(RandomData(1, size), h), -1); err != nil {
		t.Fatalf("Put: %v", err)
	}
	want := h.Sum(nil)
	info, err := s.Stat(t.Context(), key)
	if err != nil || info.Size != size {
		t.Fatalf("Stat = %+v, %v; want size %d", info, err, size)
	}
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	h.Reset()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if n != size || !bytes.Equal(h.Sum(nil), want) {
		t.Errorf("read %d bytes with SHA-256 %x, want %d bytes with %x", n, h.Sum(nil), size, want)
	}
}

func testKnownSize(t *testing.T, s storage.Store) {
	const key = "known"
	data, err := io.ReadAll(RandomData(2, 3<<20+17))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), key, OnlyReader{bytes.NewReader(data)}, int64(len(data))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got := get(t, s, key); !bytes.Equal(got, data) {
		t.Errorf("Get returned %d bytes, not the %d put", len(got), len(data))
	}
}

func testOverwrite(t *testing.T, s storage.Store) {
	const key = "walnut.json"
	put(t, s, key, []byte("first, longer version"))
	put(t, s, key, []byte("second"))
	if got := get(t, s, key); string(got) != "second" {
		t.Errorf("Get = %q, want %q", got, "second")
	}
	if infos := list(t, s, ""); len(infos) != 1 || infos[0].Size != int64(len("second")) {
		t.Errorf("List = %+v, want one object of size %d", infos, len("second"))
	}
}

func testMissing(t *testing.T, s storage.Store) {
	wantMissing(t, s, "no/such/key")
	// Neither a "directory" above an object nor a path below one is an
	// object.
	put(t, s, "dir/obj", []byte("x"))
	wantMissing(t, s, "dir")
	wantMissing(t, s, "dir/obj/below")
}

func testDeleteMissing(t *testing.T, s storage.Store) {
	for _, key := range []string{"never/was", "never"} {
		if err := s.Delete(t.Context(), key); err != nil {
			t.Errorf("Delete %s: %v", key, err)
		}
	}
}

func testDeleteThenGet(t *testing.T, s storage.Store) {
	put(t, s, "backups/b1/part_0001", []byte("a"))
	put(t, s, "backups/b1.json", []byte("b"))
	for _, key := range []string{"backups/b1.json", "backups/b1/part_0001"} {
		if err := s.Delete(t.Context(), key); err != nil {
			t.Fatalf("Delete %s: %v", key, err)
		}
		wantMissing(t, s, key)
		if err := s.Delete(t.Context(), key); err != nil {
			t.Errorf("second Delete %s: %v", key, err)
		}
	}
	if infos := list(t, s, ""); len(infos) != 0 {
		t.Errorf("List after deleting everything = %q", keys(infos))
	}
}

func testListPrefix(t *testing.T, s storage.Store) {
	// Chosen so that byte order differs from a naive directory walk:
	// "-" and "." sort before "/", "0" after it.
	objects := map[string]int{
		"walnut.json":                             1,
		"wal-x":                                   2,
		"wal/0000000100000001-a.zst":              3,
		"wal/0000000100000001-b.zst":              4,
		"wal/00000001000000010.zst":               5,
		"wal/0000000100000002-a.zst":              6,
		"wal/sub/x":                               7,
		"backups/b1.json":                         8,
		"backups/b1/part_0001":                    9,
		"backups/b10.json":                        10,
		"backups/b1-extra":                        11,
		"backups/b1/pg_control.tar.zst":           12,
		"wal/0000000100000001-a.zst.partial/fake": 13,
	}
	for key, n := range objects {
		put(t, s, key, bytes.Repeat([]byte{'x'}, n))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"wal/0000000100000001-", []string{"wal/0000000100000001-a.zst", "wal/0000000100000001-a.zst.partial/fake", "wal/0000000100000001-b.zst"}},
		{"wal/0000000100000001-b.zst", []string{"wal/0000000100000001-b.zst"}},
		{"wal/", []string{"wal/0000000100000001-a.zst", "wal/0000000100000001-a.zst.partial/fake", "wal/0000000100000001-b.zst", "wal/00000001000000010.zst", "wal/0000000100000002-a.zst", "wal/sub/x"}},
		{"wal", []string{"wal-x", "wal/0000000100000001-a.zst", "wal/0000000100000001-a.zst.partial/fake", "wal/0000000100000001-b.zst", "wal/00000001000000010.zst", "wal/0000000100000002-a.zst", "wal/sub/x", "walnut.json"}},
		{"backups/b1", []string{"backups/b1-extra", "backups/b1.json", "backups/b1/part_0001", "backups/b1/pg_control.tar.zst", "backups/b10.json"}},
		{"backups/b1/", []string{"backups/b1/part_0001", "backups/b1/pg_control.tar.zst"}},
		{"wal/sub/", []string{"wal/sub/x"}},
		{"nothing", nil},
		{"wal/nothing/", nil},
		{"walnut.json/", nil},
	}
	for _, tt := range tests {
		infos := list(t, s, tt.prefix)
		if got := keys(infos); !slices.Equal(got, tt.want) {
			t.Errorf("List %q = %q, want %q", tt.prefix, got, tt.want)
		}
		for _, info := range infos {
			if info.Size != int64(objects[info.Key]) {
				t.Errorf("List %q: %s has size %d, want %d", tt.prefix, info.Key, info.Size, objects[info.Key])
			}
		}
	}
	if got, want := keys(list(t, s, "")), slices.Sorted(maps.Keys(objects)); !slices.Equal(got, want) {
		t.Errorf("List of everything = %q, want %q", got, want)
	}
}

// testListMany goes past the 1000 keys a cloud returns per page.
func testListMany(t *testing.T, s storage.Store) {
	const n = 1100
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				key := fmt.Sprintf("many/%05d", i)
				errs <- s.Put(t.Context(), key, strings.NewReader(key), int64(len(key)))
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	infos := list(t, s, "many/")
	if len(infos) != n {
		t.Fatalf("List returned %d keys, want %d", len(infos), n)
	}
	for i, info := range infos {
		if want := fmt.Sprintf("many/%05d", i); info.Key != want || info.Size != int64(len(want)) {
			t.Fatalf("List entry %d = %+v, want %s of size %d", i, info, want, len(want))
		}
	}
	if got := list(t, s, "many/01"); len(got) != 100 || got[0].Key != "many/01000" || got[99].Key != "many/01099" {
		t.Errorf("List many/01 = %d keys from %q, want many/01000..many/01099", len(got), keys(got))
	}
}

func testListStop(t *testing.T, s storage.Store) {
	for i := range 10 {
		put(t, s, fmt.Sprintf("k/%d", i), []byte("x"))
	}
	stop := errors.New("enough")
	var seen []string
	err := s.List(t.Context(), "k/", func(info storage.ObjectInfo) error {
		seen = append(seen, info.Key)
		if len(seen) == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("List err = %v, want the callback's error", err)
	}
	if !slices.Equal(seen, []string{"k/0", "k/1", "k/2"}) {
		t.Errorf("callback saw %q, want k/0 k/1 k/2 and nothing after its error", seen)
	}
}

func testFailedPut(t *testing.T, s storage.Store) {
	boom := errors.New("source broke")
	put(t, s, "wal/seg", []byte("old content"))
	for _, size := range []int64{-1, 1 << 20} {
		for _, key := range []string{"wal/seg", "wal/new"} {
			err := s.Put(t.Context(), key, &FailAfter{R: RandomBytes(4), N: 300 << 10, Err: boom}, size)
			if err == nil {
				t.Fatalf("Put %s (size %d) from a failing reader succeeded", key, size)
			}
		}
		if got := get(t, s, "wal/seg"); string(got) != "old content" {
			t.Errorf("after failed Put (size %d): Get = %d bytes %.20q, want the old content", size, len(got), got)
		}
		wantMissing(t, s, "wal/new")
	}
	if got := keys(list(t, s, "")); !slices.Equal(got, []string{"wal/seg"}) {
		t.Errorf("List after failed Puts = %q, want only wal/seg", got)
	}
}

func testCancelled(t *testing.T, s storage.Store) {
	put(t, s, "present", []byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "put-cancelled", strings.NewReader("data"), 4); err == nil {
		t.Error("Put with a cancelled context succeeded")
	}
	if rc, err := s.Get(ctx, "present"); err == nil {
		rc.Close()
		t.Error("Get with a cancelled context succeeded")
	}
	if err := s.List(ctx, "", func(storage.ObjectInfo) error { return nil }); err == nil {
		t.Error("List with a cancelled context succeeded")
	}

	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	r := &CancelAfter{R: RandomData(3, 8<<20), N: 1 << 20, Cancel: cancel}
	if err := s.Put(ctx, "put-cancelled-midway", r, -1); err == nil {
		t.Error("Put cancelled midway succeeded")
	}
	wantMissing(t, s, "put-cancelled")
	wantMissing(t, s, "put-cancelled-midway")
	if got := keys(list(t, s, "")); !slices.Equal(got, []string{"present"}) {
		t.Errorf("List after cancelled Puts = %q, want only present", got)
	}
}

func rangeReader(t *testing.T, s storage.Store) storage.RangeReader {
	t.Helper()
	rr, ok := s.(storage.RangeReader)
	if !ok {
		t.Fatalf("%T does not implement storage.RangeReader: the retry decorator cannot resume its reads", s)
	}
	return rr
}

func readRange(t *testing.T, rr storage.RangeReader, key string, offset int64, version string) (*storage.Range, []byte) {
	t.Helper()
	rng, err := rr.GetRange(t.Context(), key, offset, version)
	if err != nil {
		t.Fatalf("GetRange %s from %d: %v", key, offset, err)
	}
	defer rng.Body.Close()
	data, err := io.ReadAll(rng.Body)
	if err != nil {
		t.Fatalf("GetRange %s from %d: read: %v", key, offset, err)
	}
	if err := rng.Body.Close(); err != nil {
		t.Fatalf("GetRange %s from %d: close: %v", key, offset, err)
	}
	return rng, data
}

// testRanges: a read resumes at exactly the offset asked for, of exactly
// the version read before, or fails for good.
func testRanges(t *testing.T, s storage.Store) {
	rr := rangeReader(t, s)
	const key = "backups/b/part_0001.tar"
	data, err := io.ReadAll(RandomData(5, 1<<20+3))
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, key, data)
	first, got := readRange(t, rr, key, 0, "")
	if !bytes.Equal(got, data) || first.Version == "" || first.Size != int64(len(data)) {
		t.Fatalf("GetRange from 0: %d bytes, version %q, size %d; want the object, a version and size %d", len(got), first.Version, first.Size, len(data))
	}
	for _, off := range []int64{1, 1000, 1 << 20, int64(len(data)) - 1} {
		rng, got := readRange(t, rr, key, off, first.Version)
		if !bytes.Equal(got, data[off:]) || rng.Version != first.Version || rng.Size != int64(len(data)) {
			t.Errorf("GetRange from %d: %d bytes (equal: %v), version %q, size %d; want the %d bytes from there of version %q, size %d",
				off, len(got), bytes.Equal(got, data[off:]), rng.Version, rng.Size, len(data)-int(off), first.Version, len(data))
		}
	}
	put(t, s, "empty", nil)
	if rng, got := readRange(t, rr, "empty", 0, ""); len(got) != 0 || rng.Size != 0 {
		t.Errorf("GetRange of an empty object: %d bytes, size %d", len(got), rng.Size)
	}
	if _, err := rr.GetRange(t.Context(), "no/such/key", 0, ""); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetRange of a missing key: %v, want ErrNotFound", err)
	}

	other := bytes.Clone(data)
	other[0] ^= 0xff
	put(t, s, key, other)
	rng, err := rr.GetRange(t.Context(), key, 1000, first.Version)
	if err == nil {
		rng.Body.Close()
		t.Fatal("GetRange of an overwritten object with the old version succeeded")
	}
	if !errors.Is(err, storage.ErrChanged) || !storage.IsPermanent(err) || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetRange of an overwritten object with the old version: %v; want a Permanent ErrChanged", err)
	}
}

// resumePolicy retries at once, so the suite does not wait.
func resumePolicy() storage.RetryPolicy {
	return storage.RetryPolicy{MaxAttempts: 5, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond}
}

// testResumedRead: reads that break midway, through the retry decorator,
// deliver the object whole, each byte once.
func testResumedRead(t *testing.T, s storage.Store) {
	rangeReader(t, s)
	const key = "wal/000000010000000000000001-0123456789abcdef"
	h := sha256.New()
	const size = 3<<20 + 17
	if err := s.Put(t.Context(), key, io.TeeReader(RandomData(6, size), h), size); err != nil {
		t.Fatal(err)
	}
	want := h.Sum(nil)
	f := NewFaulty(s, Fault{Op: OpGet, Midway: 1 << 20, Times: 3})
	rc, err := storage.WithRetry(f, resumePolicy()).Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	h.Reset()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatalf("read, breaking after every MiB three times: %v", err)
	}
	if n != size || !bytes.Equal(h.Sum(nil), want) {
		t.Errorf("read %d bytes with SHA-256 %x, want %d bytes with %x", n, h.Sum(nil), size, want)
	}
	if got := f.Calls(OpGet); got != 4 {
		t.Errorf("%d Get and GetRange calls, want 4: one, and one after each break", got)
	}
}

// readChanged reads key through the decorator, changes it with change
// halfway, and checks that the read fails for good, as ErrChanged, after
// yielding nothing but a prefix of data.
func readChanged(t *testing.T, s storage.Store, key string, data []byte, change func()) {
	t.Helper()
	f := NewFaulty(s, Fault{Op: OpGet, Midway: 1 << 20, Times: 1})
	rc, err := storage.WithRetry(f, resumePolicy()).Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	head := make([]byte, 512<<10)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatalf("read before the change: %v", err)
	}
	change()
	rest, err := io.ReadAll(rc)
	got := append(head, rest...)
	if !bytes.HasPrefix(data, got) {
		t.Errorf("the read yielded %d bytes that are not the object's first", len(got))
	}
	switch {
	case err == nil:
		t.Errorf("a read across a change of the object succeeded with %d of %d bytes", len(got), len(data))
	case !errors.Is(err, storage.ErrChanged) || !storage.IsPermanent(err):
		t.Errorf("read across a change: %v; want a Permanent ErrChanged", err)
	case errors.Is(err, storage.ErrNotFound):
		t.Errorf("read across a change: %v is ErrNotFound: wal-fetch would end recovery early", err)
	case strings.Contains(err.Error(), "\n"):
		t.Errorf("read across a change: error is more than one line: %q", err)
	}
}

func testChangedWhileRead(t *testing.T, s storage.Store) {
	rangeReader(t, s)
	const key = "backups/b/part_0001.tar"
	data, err := io.ReadAll(RandomData(8, 2<<20))
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, key, data)
	other := bytes.Clone(data)
	other[len(other)-1] ^= 0xff
	readChanged(t, s, key, data, func() { put(t, s, key, other) })
}

func testDeletedWhileRead(t *testing.T, s storage.Store) {
	rangeReader(t, s)
	const key = "wal/000000010000000000000002-0123456789abcdef"
	data, err := io.ReadAll(RandomData(9, 2<<20))
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, key, data)
	readChanged(t, s, key, data, func() {
		if err := s.Delete(t.Context(), key); err != nil {
			t.Fatal(err)
		}
	})
}
