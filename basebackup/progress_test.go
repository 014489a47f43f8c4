package basebackup

import (
	"os"
	"path/filepath"
	"testing"
)

// The estimate is the sum of the regular files the partitions will hold,
// with pg_basebackup's exclusions applied.
func TestEstimateSize(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("PG_VERSION", 3)
	write("base/1/1259", 8192)
	write("global/pg_control", 8192)                // stored apart, at the end
	write("pg_wal/000000010000000000000001", 1<<20) // excluded
	write("postmaster.pid", 100)                    // excluded
	if got, want := estimateSize(t.Context(), dir, nil, "PG_15_"), int64(3+8192); got != want {
		t.Errorf("estimate %d, want %d", got, want)
	}
}
