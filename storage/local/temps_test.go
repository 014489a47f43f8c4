package local_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/storage"
)

// leaveTemp writes a temp file at key as a Put killed midway leaves one,
// last written at mtime.
func leaveTemp(t *testing.T, root, key string, size int, mtime time.Time) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, make([]byte, size), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func temps(t *testing.T, s storage.Store) map[string]storage.ObjectInfo {
	t.Helper()
	got := map[string]storage.ObjectInfo{}
	if err := storage.Temps(t.Context(), s, func(oi storage.ObjectInfo) error {
		got[oi.Key] = oi
		return nil
	}); err != nil {
		t.Fatalf("Temps: %v", err)
	}
	return got
}

// Temp files left by killed Puts are found wherever they are, and only
// those not written to since the cut-off are removed, with the backup
// directory they leave empty.
func TestTempsSwept(t *testing.T) {
	ls, root := newStore(t)
	s := storage.WithRetry(ls, storage.DefaultRetryPolicy())
	if err := s.Put(t.Context(), "wal/000000010000000000000001-0123456789abcdef.zst", strings.NewReader("seg"), 3); err != nil {
		t.Fatal(err)
	}
	if got := temps(t, s); len(got) != 0 {
		t.Fatalf("Temps of an archive with none: %v", got)
	}
	old := time.Now().Add(-48 * time.Hour)
	leaveTemp(t, root, "wal/.tmp-111", 5000, old)
	leaveTemp(t, root, "backups/base_1/.tmp-222", 70, old)
	leaveTemp(t, root, ".tmp-333", 10, old)
	leaveTemp(t, root, "wal/.tmp-444", 20, time.Now())

	got := temps(t, s)
	want := map[string]int64{"wal/.tmp-111": 5000, "backups/base_1/.tmp-222": 70, ".tmp-333": 10, "wal/.tmp-444": 20}
	if len(got) != len(want) {
		t.Errorf("Temps = %v, want %v", got, want)
	}
	for k, size := range want {
		if got[k].Size != size {
			t.Errorf("Temps: %s = %+v, want size %d", k, got[k], size)
		}
	}
	if ks := listKeys(t, s, ""); !slices.Equal(ks, []string{"wal/000000010000000000000001-0123456789abcdef.zst"}) {
		t.Errorf("List shows %q: temp files must stay hidden", ks)
	}

	cutoff := time.Now().Add(-24 * time.Hour)
	for key := range want {
		removed, err := storage.RemoveTemp(t.Context(), s, key, cutoff)
		if err != nil {
			t.Fatalf("RemoveTemp %s: %v", key, err)
		}
		if removed == (key == "wal/.tmp-444") {
			t.Errorf("RemoveTemp %s = %v", key, removed)
		}
	}
	if left := tempFiles(t, root); !slices.Equal(left, []string{filepath.Join(root, "wal/.tmp-444")}) {
		t.Errorf("temp files left: %q, want only the fresh one", left)
	}
	if _, err := os.Stat(filepath.Join(root, "backups")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("backups/ holding only a temp file was not removed with it: %v", err)
	}
	if removed, err := storage.RemoveTemp(t.Context(), s, "wal/.tmp-111", cutoff); removed || err != nil {
		t.Errorf("RemoveTemp of a temp file already gone = %v, %v; want false, nil", removed, err)
	}
	for _, key := range []string{"wal/000000010000000000000001-0123456789abcdef.zst", "../.tmp-1", "wal/../.tmp-1", "/.tmp-1", ".tmp-1/x"} {
		if _, err := storage.RemoveTemp(t.Context(), s, key, time.Now()); err == nil || !storage.IsPermanent(err) {
			t.Errorf("RemoveTemp %q = %v, want a Permanent refusal", key, err)
		}
	}
	if _, err := ls.Stat(t.Context(), "wal/000000010000000000000001-0123456789abcdef.zst"); err != nil {
		t.Errorf("the object beside the temp files: %v", err)
	}
}

// A Put still writing keeps its temp file: it is listed, written to
// recently, and RemoveTemp leaves it; the Put then completes.
func TestTempOfLivePutKept(t *testing.T) {
	s, _ := newStore(t)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- s.Put(t.Context(), "wal/seg", pr, -1) }()
	if _, err := pw.Write([]byte("first half ")); err != nil {
		t.Fatal(err)
	}
	got := temps(t, s)
	if len(got) != 1 {
		t.Fatalf("Temps during a Put = %v, want its temp file", got)
	}
	for key := range got {
		if removed, err := s.RemoveTemp(t.Context(), key, time.Now().Add(-time.Minute)); removed || err != nil {
			t.Errorf("RemoveTemp of a live Put's temp file = %v, %v", removed, err)
		}
	}
	pw.Write([]byte("second half"))
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got := temps(t, s); len(got) != 0 {
		t.Errorf("Temps after the Put = %v", got)
	}
}
