package wal

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

// statusSnapshot is archive_status as names with size and mtime, to show
// wal-push never changes it.
func statusSnapshot(t *testing.T, walDir string) string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(walDir, "archive_status"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(e.Name() + " " + fi.ModTime().String() + "\n")
	}
	return b.String()
}

func poolPush(s storage.Store, path string, pool int, archive string) (PoolResult, error) {
	return PushPool(context.Background(), PoolOptions{
		PushOptions: PushOptions{Store: s, Codec: compression.Default(), Path: path, Log: slog.New(slog.DiscardHandler)},
		PoolSize:    pool,
		ArchiveID:   archive,
	})
}

func TestWALPushPoolStoresAheadOnce(t *testing.T) {
	walDir, names := fixture.PGWAL(t, 6, nil)
	before := statusSnapshot(t, walDir)
	s := storagetest.NewFaulty(mem.New())

	res, err := poolPush(s, filepath.Join(walDir, names[0]), 4, "file:///a")
	if err != nil {
		t.Fatal(err)
	}
	if res.FromMarker || len(res.Ahead) != 3 || res.AheadFailed != 0 {
		t.Fatalf("first pooled push: %+v", res)
	}
	for i, r := range res.Ahead {
		if !strings.HasPrefix(r.Key, "wal/"+names[i+1]+"-") {
			t.Errorf("ahead %d stored %s, want %s (next in WAL order)", i, r.Key, names[i+1])
		}
	}
	if got := len(fixture.Keys(t, s, "wal/")); got != 4 {
		t.Fatalf("%d WAL objects after a pool of 4, want 4", got)
	}
	puts := s.Calls(storagetest.OpPut)

	// PostgreSQL's own calls for the three stored ahead ask nothing of the
	// store.
	calls := func() int {
		return s.Calls(storagetest.OpPut) + s.Calls(storagetest.OpGet) + s.Calls(storagetest.OpList) + s.Calls(storagetest.OpStat)
	}
	for _, name := range names[1:4] {
		n := calls()
		r, err := poolPush(s, filepath.Join(walDir, name), 1, "file:///a")
		if err != nil || !r.FromMarker || !r.AlreadyStored {
			t.Fatalf("push of %s stored ahead: %+v, %v", name, r, err)
		}
		if calls() != n {
			t.Errorf("push of %s stored ahead called the store", name)
		}
	}
	if s.Calls(storagetest.OpPut) != puts {
		t.Errorf("files stored ahead were stored again")
	}
	if m, _ := os.ReadDir(walStatePath(walDir, archivedDirName)); len(m) != 0 {
		t.Errorf("markers left after use: %v", m)
	}
	if after := statusSnapshot(t, walDir); after != before {
		t.Errorf("archive_status changed:\nbefore\n%safter\n%s", before, after)
	}
}

// A marker vouches only for the content it recorded and the archive it
// was stored in.
func TestWALPushPoolMarkerChecksContent(t *testing.T) {
	walDir, names := fixture.PGWAL(t, 3, nil)
	s := storagetest.NewFaulty(mem.New())
	if _, err := poolPush(s, filepath.Join(walDir, names[0]), 3, "file:///a"); err != nil {
		t.Fatal(err)
	}

	// The segment was rewritten since (as if recycled under its name):
	// the marker must not answer for it; the archive's copy decides.
	fixture.WriteSegment(t, filepath.Join(walDir, names[1]), fixture.Plain, 0xEE)
	_, err := poolPush(s, filepath.Join(walDir, names[1]), 1, "file:///a")
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("push of a rewritten segment with a marker: %v, want the conflict with the stored one", err)
	}

	// Another archive: the marker says nothing about it.
	other := storagetest.NewFaulty(mem.New())
	r, err := poolPush(other, filepath.Join(walDir, names[2]), 1, "file:///b")
	if err != nil || r.FromMarker || r.AlreadyStored {
		t.Fatalf("push to another archive with a marker from the first: %+v, %v", r, err)
	}
	if other.Calls(storagetest.OpPut) == 0 {
		t.Fatal("push to another archive stored nothing")
	}
}

// Only the requested file decides the outcome; one that fails ahead gets
// no marker and is stored by its own call.
func TestWALPushPoolAheadFailure(t *testing.T) {
	walDir, names := fixture.PGWAL(t, 3, nil)
	bad := "wal/" + names[1] + "-"
	s := storagetest.NewFaulty(mem.New(), storagetest.Fault{Op: storagetest.OpPut, Key: func(k string) bool { return strings.HasPrefix(k, bad) }, Times: 1, Err: storage.Permanent(errors.New("refused"))})
	res, err := poolPush(s, filepath.Join(walDir, names[0]), 3, "file:///a")
	if err != nil {
		t.Fatalf("a failure ahead failed the requested push: %v", err)
	}
	if res.AheadFailed != 1 || len(res.Ahead) != 1 {
		t.Fatalf("pooled push with one failure ahead: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(walStatePath(walDir, archivedDirName), names[1])); err == nil {
		t.Fatal("a marker was left for a file that was not stored")
	}
	r, err := poolPush(s, filepath.Join(walDir, names[1]), 1, "file:///a")
	if err != nil || r.FromMarker || r.AlreadyStored {
		t.Fatalf("own push after a failure ahead: %+v, %v", r, err)
	}
}

// When the requested file fails, the command fails at once (PostgreSQL
// retries it), whatever happens ahead.
func TestWALPushPoolRequestedFailure(t *testing.T) {
	walDir, names := fixture.PGWAL(t, 3, nil)
	bad := "wal/" + names[0] + "-"
	s := storagetest.NewFaulty(mem.New(), storagetest.Fault{Op: storagetest.OpPut, Key: func(k string) bool { return strings.HasPrefix(k, bad) }, Err: storage.Permanent(errors.New("refused"))})
	if _, err := poolPush(s, filepath.Join(walDir, names[0]), 3, "file:///a"); err == nil {
		t.Fatal("pooled push whose requested file failed succeeded")
	}
}

func TestWALPushPoolOrder(t *testing.T) {
	walDir, names := fixture.PGWAL(t, 2, nil)
	for _, f := range []string{"00000002.history", names[0] + ".00000028.backup", "000000010000000000000009.partial", "notwal"} {
		if err := os.WriteFile(filepath.Join(walDir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(walDir, "archive_status", f+".ready"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	markers := walStatePath(walDir, archivedDirName)
	got, err := readyFiles(walDir, names[0], markers, "t", 10)
	if err != nil {
		t.Fatal(err)
	}
	var base []string
	for _, p := range got {
		base = append(base, filepath.Base(p))
	}
	want := []string{"00000002.history", names[0] + ".00000028.backup", names[1], "000000010000000000000009.partial"}
	if strings.Join(base, " ") != strings.Join(want, " ") {
		t.Fatalf("ready files %v, want %v", base, want)
	}
	if err := writeMarker(markers, marker{Name: names[1], Archive: "t", Stored: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got, _ = readyFiles(walDir, names[0], markers, "t", 3)
	if len(got) != 3 || filepath.Base(got[2]) != "000000010000000000000009.partial" {
		t.Fatalf("ready files with a marker for %s: %v", names[1], got)
	}
}
