package wal

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/storage/mem"
)

func lzop(t *testing.T, path string) []byte {
	t.Helper()
	if _, err := exec.LookPath("lzop"); err != nil {
		testpg.Require(t, "lzop", err)
	}
	out, err := exec.Command("lzop", "-c", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wal-fetch reads WAL-E's wal_005/<name>.lzo and checks it before handing
// it over; with walnut's object under the same name, the same content is
// fine and a different one an error, never a guess.
func TestFetchWALE(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mem.New()
	seg := fixture.Segment(t, dir, segName, 0xAB)
	want, _ := os.ReadFile(seg)
	store := func(key string, b []byte) {
		if err := s.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	store(archive.WALEWALKey(segName), lzop(t, seg))
	dest := filepath.Join(dir, "RECOVERYXLOG")
	if err := Fetch(ctx, FetchOptions{Store: s, Name: segName, Dest: dest, Log: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, want) {
		t.Fatal("fetched segment differs")
	}

	// Another segment's content under this name: its page header says so.
	other := fixture.Segment(t, t.TempDir(), "000000010000000000000002", 0xAB)
	store(archive.WALEWALKey(segName), lzop(t, other))
	os.Remove(dest)
	if err := Fetch(ctx, FetchOptions{Store: s, Name: segName, Dest: dest, Log: slog.New(slog.DiscardHandler)}); err == nil || !strings.Contains(err.Error(), "another segment") {
		t.Fatalf("wrong segment: %v", err)
	}
	if _, err := os.Stat(dest); err == nil {
		t.Fatal("a wrong segment was handed over")
	}

	// Both layouts: walnut's object wins when WAL-E's is the same file.
	store(archive.WALEWALKey(segName), lzop(t, seg))
	if _, err := push(t, s, seg); err != nil {
		t.Fatal(err)
	}
	if err := Fetch(ctx, FetchOptions{Store: s, Name: segName, Dest: dest, Log: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatalf("same file in both layouts: %v", err)
	}
	diff := filepath.Join(t.TempDir(), segName)
	fixture.WriteSegment(t, diff, fixture.Plain, 0xCD)
	store(archive.WALEWALKey(segName), lzop(t, diff))
	os.Remove(dest)
	if err := Fetch(ctx, FetchOptions{Store: s, Name: segName, Dest: dest, Log: slog.New(slog.DiscardHandler)}); err == nil || !strings.Contains(err.Error(), "archived twice with different contents") {
		t.Fatalf("different files in both layouts: %v", err)
	}
}
