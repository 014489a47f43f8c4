package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

const segName = "000000010000000000000001"

// segment writes a WAL file named name whose first page is a real PG 15
// long page header (from testdata), followed by filler.
func segment(t *testing.T, dir, name, fixture string, filler byte) string {
	t.Helper()
	head, err := os.ReadFile(filepath.Join("..", "testdata", "pgcontrol", fixture))
	if err != nil {
		t.Fatal(err)
	}
	body := append(head, bytes.Repeat([]byte{filler}, 1<<20)...)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func push(t *testing.T, s storage.Store, path string) (WALPushResult, error) {
	t.Helper()
	return WALPush(context.Background(), WALPushOptions{Store: s, Codec: compression.Default(), Path: path, Log: slog.New(slog.DiscardHandler)})
}

func keys(t *testing.T, s storage.Store, prefix string) []string {
	t.Helper()
	var out []string
	if err := s.List(context.Background(), prefix, func(oi storage.ObjectInfo) error {
		out = append(out, oi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWALPushFetchRoundTripAndIdempotence(t *testing.T) {
	dir := t.TempDir()
	s := mem.New()
	p := segment(t, dir, segName, "pg15_plain_000000010000000000000001.walhead", 0xAB)

	res, err := push(t, s, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.AlreadyStored || !strings.HasPrefix(res.Key, "wal/"+segName+"-") || !strings.HasSuffix(res.Key, ".zst") {
		t.Fatalf("first push: %+v", res)
	}
	if got := keys(t, s, ""); len(got) != 2 || got[0] != res.Key || got[1] != identityKey {
		t.Fatalf("objects after push: %v", got)
	}
	again, err := push(t, s, p)
	if err != nil || !again.AlreadyStored || again.Key != res.Key {
		t.Fatalf("second push: %+v, %v", again, err)
	}

	dest := filepath.Join(dir, "fetched")
	if err := WALFetch(context.Background(), WALFetchOptions{Store: s, Name: segName, Dest: dest}); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(p)
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, want) {
		t.Fatal("fetched segment differs from the pushed one")
	}

	err = WALFetch(context.Background(), WALFetchOptions{Store: s, Name: "000000010000000000000002", Dest: filepath.Join(dir, "missing")})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing segment: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a missing segment left a DEST file")
	}
}

func TestWALPushConflictLeavesArchiveUnchanged(t *testing.T) {
	s := mem.New()
	p := segment(t, t.TempDir(), segName, "pg15_plain_000000010000000000000001.walhead", 1)
	first, err := push(t, s, p)
	if err != nil {
		t.Fatal(err)
	}
	other := segment(t, t.TempDir(), segName, "pg15_plain_000000010000000000000001.walhead", 2)
	if _, err := push(t, s, other); !errors.Is(err, ErrWALConflict) {
		t.Fatalf("different content: %v, want ErrWALConflict", err)
	}
	if got := keys(t, s, "wal/"); len(got) != 1 || got[0] != first.Key {
		t.Fatalf("archive changed: %v", got)
	}
}

func TestWALPushRefusesAnotherCluster(t *testing.T) {
	s := mem.New()
	if _, err := push(t, s, segment(t, t.TempDir(), segName, "pg15_plain_000000010000000000000001.walhead", 1)); err != nil {
		t.Fatal(err)
	}
	foreign := segment(t, t.TempDir(), "000000010000000000000002", "pg15_checksums_000000010000000000000001.walhead", 1)
	if _, err := push(t, s, foreign); !errors.Is(err, ErrForeignCluster) {
		t.Fatalf("foreign segment: %v, want ErrForeignCluster", err)
	}
	if got := keys(t, s, "wal/000000010000000000000002"); len(got) != 0 {
		t.Fatalf("foreign segment stored: %v", got)
	}
}

// A Put that fails midway is retried by the decorator, which rewinds the
// compressed stream; the object stored is whole.
func TestWALPushRetriesWithRewind(t *testing.T) {
	inner := mem.New()
	faulty := storagetest.NewFaulty(inner, storagetest.Fault{Op: storagetest.OpPut, Key: func(k string) bool { return strings.HasPrefix(k, "wal/") }, Times: 2, Midway: 1000})
	s := storage.WithRetry(faulty, storage.RetryPolicy{MaxAttempts: 4, InitialInterval: 1, MaxInterval: 1})
	dir := t.TempDir()
	p := segment(t, dir, segName, "pg15_plain_000000010000000000000001.walhead", 7)
	if _, err := push(t, s, p); err != nil {
		t.Fatalf("push through two failed attempts: %v", err)
	}
	if n := faulty.Failures(storagetest.OpPut); n != 2 {
		t.Fatalf("%d failed Puts, want 2", n)
	}
	dest := filepath.Join(dir, "fetched")
	if err := WALFetch(context.Background(), WALFetchOptions{Store: inner, Name: segName, Dest: dest}); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(p)
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, want) {
		t.Fatal("retried push stored a different object")
	}
}

func TestWALFetchRejectsCorruptObject(t *testing.T) {
	s := mem.New()
	dir := t.TempDir()
	p := segment(t, dir, segName, "pg15_plain_000000010000000000000001.walhead", 3)
	res, err := WALPush(context.Background(), WALPushOptions{Store: s, Codec: mustCodec(t, "none"), Path: p})
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := s.Get(context.Background(), res.Key)
	b, _ := io.ReadAll(rc)
	rc.Close()
	b[len(b)/2] ^= 0xFF
	if err := s.Put(context.Background(), res.Key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "fetched")
	err = WALFetch(context.Background(), WALFetchOptions{Store: s, Name: segName, Dest: dest})
	if err == nil || errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), res.Key) {
		t.Fatalf("corrupt object: %v, want an error naming %s", err, res.Key)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("corrupt object was handed over")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*walnut-tmp*")); len(m) != 0 {
		t.Fatalf("temp files left: %v", m)
	}
}

func TestWALPushRefusesOtherNames(t *testing.T) {
	p := filepath.Join(t.TempDir(), "postgresql.conf")
	os.WriteFile(p, []byte("x"), 0o600)
	if _, err := push(t, mem.New(), p); err == nil || !strings.Contains(err.Error(), "postgresql.conf") {
		t.Fatalf("push of postgresql.conf: %v", err)
	}
}

func mustCodec(t *testing.T, spec string) compression.Codec {
	c, err := compression.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseWALKey(t *testing.T) {
	cases := []struct {
		key, name, digest, codec string
		enc, bad                 bool
	}{
		{key: "wal/000000010000000A000000FF-0123456789abcdef.zst", name: "000000010000000A000000FF", digest: "0123456789abcdef", codec: "zstd"},
		{key: "wal/00000002.history-0123456789abcdef", name: "00000002.history", digest: "0123456789abcdef", codec: "none"},
		{key: "wal/000000010000000000000002.00000028.backup-0123456789abcdef.lz4.pgp", name: "000000010000000000000002.00000028.backup", digest: "0123456789abcdef", codec: "lz4", enc: true},
		{key: "wal/000000010000000000000002-short.zst", bad: true},
		{key: "backups/x.json", bad: true},
	}
	for _, c := range cases {
		o, err := parseWALKey(c.key)
		if c.bad {
			if err == nil {
				t.Errorf("%s: want error", c.key)
			}
			continue
		}
		if err != nil || o.Name != c.name || o.Digest != c.digest || o.Codec.Name() != c.codec || o.Encrypted != c.enc {
			t.Errorf("%s: got %+v (%v)", c.key, o, err)
		}
	}
}

func TestBackupNameFromSentinel(t *testing.T) {
	for key, want := range map[string]string{
		"backups/base_000000010000000000000002_00000028.json": "base_000000010000000000000002_00000028",
		"backups/base_x/files.json.zst":                       "",
		"backups/.json":                                       "",
		"wal/x.json":                                          "",
	} {
		if got := backupNameFromSentinel(key); got != want {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
}
