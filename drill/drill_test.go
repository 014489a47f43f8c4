package drill

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/pgserver"
)

func TestScratchRefusesNonEmpty(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o600)
	if _, err := prepareScratch(dir, ""); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("non-empty scratch directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "precious")); err != nil {
		t.Fatalf("a refused scratch directory was touched: %v", err)
	}
}

// A scratch directory walnut made goes entirely; one it was given is
// emptied and kept.
func TestScratchRemoved(t *testing.T) {
	// Under a directory the server's user (postgres, when the tests run
	// as root) can reach.
	parent := testpg.SharedTempDir(t)
	made := filepath.Join(parent, "new")
	sc, err := prepareScratch(made, "")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(made, "data", "base"), 0o700)
	if err := sc.remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(made); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("scratch directory walnut made is still there: %v", err)
	}

	given := filepath.Join(parent, "given")
	if err := os.Mkdir(given, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(given); err != nil {
		t.Fatal(err)
	}
	sc, err = prepareScratch(given, "")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(given, "data", "base"), 0o700)
	if err := sc.remove(); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(given); err != nil || len(entries) != 0 {
		t.Errorf("given scratch directory: %v, %v; want it kept and empty", entries, err)
	}
}

// PostgreSQL refuses two recovery targets, and command-line settings
// apply in order: the drill's target comes after the others are cleared.
func TestDrillSettingsOrder(t *testing.T) {
	s := drillSettings("walnut wal-fetch %f %p", 15)
	idx := func(name string) int {
		return slices.IndexFunc(s, func(kv [2]string) bool { return kv[0] == name })
	}
	target := idx("recovery_target")
	for _, other := range []string{"recovery_target_time", "recovery_target_xid", "recovery_target_lsn", "recovery_target_name"} {
		if i := idx(other); i < 0 || i > target || s[i][1] != "" {
			t.Errorf("%s at %d (%q): want it cleared before recovery_target (%d)", other, i, s[i][1], target)
		}
	}
	if s[idx("archive_mode")][1] != "off" || s[idx("recovery_target_action")][1] != "promote" || s[target][1] != "immediate" {
		t.Errorf("settings %v", s)
	}
	if idx("stats_temp_directory") >= 0 {
		t.Error("stats_temp_directory is gone in PostgreSQL 15")
	}
	if s := drillSettings("x", 14); !slices.ContainsFunc(s, func(kv [2]string) bool { return kv[0] == "stats_temp_directory" }) {
		t.Error("PostgreSQL 14 needs its own stats_temp_directory")
	}
}

func TestServerEnv(t *testing.T) {
	got := serverEnv([]string{"PGPORT=5432", "PGDATA=/var/lib/x", "HOME=/root", "WALNUT_PREFIX=s3://b/p", "AWS_REGION=eu"},
		&pgserver.User{Name: "postgres", Home: "/var/lib/postgresql"})
	want := []string{"WALNUT_PREFIX=s3://b/p", "AWS_REGION=eu", "HOME=/var/lib/postgresql", "USER=postgres", "LOGNAME=postgres"}
	if !slices.Equal(got, want) {
		t.Errorf("serverEnv: %v, want %v", got, want)
	}
}
