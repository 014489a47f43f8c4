package restore

import (
	"os"
	"path/filepath"
	"testing"
)

// syncAll reaches every file and directory of every root and passes over
// symlinks, including pg_tblspc's absolute ones that os.Root would refuse
// to follow.
func TestSyncAllSkipsSymlinks(t *testing.T) {
	dir, ts := t.TempDir(), t.TempDir()
	for _, p := range []string{"base/1/1259", "base/1/1259_fsm", "global/1262", "PG_VERSION"} {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(p), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "pg_tblspc"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ts, filepath.Join(dir, "pg_tblspc", "16384")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent", filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "16385"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var roots []*os.Root
	for _, d := range []string{dir, ts} {
		r, err := os.OpenRoot(d)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		roots = append(roots, r)
	}
	if err := syncAll(t.Context(), roots); err != nil {
		t.Fatal(err)
	}

}
