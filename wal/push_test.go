package wal

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
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

const segName = "000000010000000000000001"

func push(t *testing.T, s storage.Store, path string) (PushResult, error) {
	t.Helper()
	return Push(context.Background(), PushOptions{Store: s, Codec: compression.Default(), Path: path, Log: slog.New(slog.DiscardHandler)})
}

func TestWALPushFetchRoundTripAndIdempotence(t *testing.T) {
	dir := t.TempDir()
	s := mem.New()
	p := fixture.Segment(t, dir, segName, 0xAB)

	res, err := push(t, s, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.AlreadyStored || !strings.HasPrefix(res.Key, "wal/"+segName+"-") || !strings.HasSuffix(res.Key, ".zst") {
		t.Fatalf("first push: %+v", res)
	}
	if got := fixture.Keys(t, s, ""); len(got) != 2 || got[0] != res.Key || got[1] != archive.IdentityKey {
		t.Fatalf("objects after push: %v", got)
	}
	again, err := push(t, s, p)
	if err != nil || !again.AlreadyStored || again.Key != res.Key {
		t.Fatalf("second push: %+v, %v", again, err)
	}

	dest := filepath.Join(dir, "fetched")
	if err := Fetch(context.Background(), FetchOptions{Store: s, Name: segName, Dest: dest}); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(p)
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, want) {
		t.Fatal("fetched segment differs from the pushed one")
	}

	err = Fetch(context.Background(), FetchOptions{Store: s, Name: "000000010000000000000002", Dest: filepath.Join(dir, "missing")})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing segment: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a missing segment left a DEST file")
	}
}

func TestWALPushConflictLeavesArchiveUnchanged(t *testing.T) {
	s := mem.New()
	p := fixture.Segment(t, t.TempDir(), segName, 1)
	first, err := push(t, s, p)
	if err != nil {
		t.Fatal(err)
	}
	other := fixture.Segment(t, t.TempDir(), segName, 2)
	if _, err := push(t, s, other); !errors.Is(err, ErrConflict) {
		t.Fatalf("different content: %v, want ErrConflict", err)
	}
	if got := fixture.Keys(t, s, "wal/"); len(got) != 1 || got[0] != first.Key {
		t.Fatalf("archive changed: %v", got)
	}
}

func TestWALPushRefusesAnotherCluster(t *testing.T) {
	s := mem.New()
	if _, err := push(t, s, fixture.Segment(t, t.TempDir(), segName, 1)); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(t.TempDir(), "000000010000000000000002")
	fixture.WriteSegment(t, foreign, fixture.Checksums, 1)
	if _, err := push(t, s, foreign); !errors.Is(err, archive.ErrForeignCluster) {
		t.Fatalf("foreign segment: %v, want ErrForeignCluster", err)
	}
	if got := fixture.Keys(t, s, "wal/000000010000000000000002"); len(got) != 0 {
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
	p := fixture.Segment(t, dir, segName, 7)
	if _, err := push(t, s, p); err != nil {
		t.Fatalf("push through two failed attempts: %v", err)
	}
	if n := faulty.Failures(storagetest.OpPut); n != 2 {
		t.Fatalf("%d failed Puts, want 2", n)
	}
	dest := filepath.Join(dir, "fetched")
	if err := Fetch(context.Background(), FetchOptions{Store: inner, Name: segName, Dest: dest}); err != nil {
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
	p := fixture.Segment(t, dir, segName, 3)
	res, err := Push(context.Background(), PushOptions{Store: s, Codec: mustCodec(t, "none"), Path: p})
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
	err = Fetch(context.Background(), FetchOptions{Store: s, Name: segName, Dest: dest})
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

// A wal-fetch killed while writing leaves its temp file beside Dest; the
// next wal-fetch into that directory removes those older than a minute,
// and nothing else.
func TestFetchRemovesDeadFetchesTemps(t *testing.T) {
	s := mem.New()
	p := fixture.Segment(t, t.TempDir(), segName, 1)
	if _, err := push(t, s, p); err != nil {
		t.Fatal(err)
	}
	walDir := t.TempDir()
	old := time.Now().Add(-2 * time.Minute)
	files := map[string]bool{ // name -> kept
		".RECOVERYXLOG" + archive.TempInfix + "123":        false,
		"." + segName + archive.TempInfix + "456":          false,
		".RECOVERYXLOG" + archive.TempInfix + "789":        true, // fresh: may be being written
		".RECOVERYHISTORY":                                 true, // not walnut's
		"000000010000000000000009":                         true,
		".000000010000000000000009.partial.walnut-other-1": true,
	}
	for name, kept := range files {
		fp := filepath.Join(walDir, name)
		if err := os.WriteFile(fp, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if !kept || !strings.Contains(name, "789") {
			if err := os.Chtimes(fp, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := Fetch(t.Context(), FetchOptions{Store: s, Name: segName, Dest: filepath.Join(walDir, "RECOVERYXLOG")}); err != nil {
		t.Fatal(err)
	}
	for name, kept := range files {
		_, err := os.Stat(filepath.Join(walDir, name))
		if kept != (err == nil) {
			t.Errorf("%s: kept %v, want %v", name, err == nil, kept)
		}
	}
}

// wal-push stores only files that are what their names say: a truncated
// segment stored once would block the real one for good and be handed to
// recovery by wal-fetch.
func TestPushRefusesFilesThatAreNotWhatTheirNameSays(t *testing.T) {
	dir := t.TempDir()
	whole := fixture.Segment(t, t.TempDir(), segName, 5)
	body, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		body []byte
		want string
	}{
		{segName, body[:8_000_000], "truncated"},
		{segName, append(append([]byte(nil), body...), 0), "truncated"},
		{segName, make([]byte, len(body)), "magic"},
		{"000000010000000000000002", body, "another segment"},
		{segName + ".partial", body[:1<<20], "truncated"},
		{"00000002.history", []byte("not a history\n"), "history"},
		{"00000002.history", []byte(""), "without entries"},
		{"00000002.history", []byte("2\t0/3000000\tno recovery target specified\n"), "parent of timeline 2"},
		{segName + ".00000028.backup", []byte("garbage"), "backup history"},
	}
	for _, c := range cases {
		s := mem.New()
		_, err := push(t, s, write(c.name, c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "not archived") {
			t.Errorf("%s (%d bytes): %v, want an error saying %q and not archived", c.name, len(c.body), err, c.want)
		}
		if got := fixture.Keys(t, s, ""); len(got) != 0 {
			t.Errorf("%s: stored %v", c.name, got)
		}
	}

	// What is whole and well-formed is stored, after a refused try.
	s := mem.New()
	if _, err := push(t, s, write(segName, body[:8_000_000])); err == nil {
		t.Fatal("truncated segment archived")
	}
	for name, b := range map[string][]byte{
		segName:                      body,
		segName + ".partial":         body,
		"00000002.history":           []byte("1\t0/3000000\tno recovery target specified\n"),
		segName + ".00000028.backup": []byte("START WAL LOCATION: 0/1000028 (file " + segName + ")\nSTOP WAL LOCATION: 0/1000100 (file " + segName + ")\n"),
	} {
		if _, err := push(t, s, write(name, b)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
