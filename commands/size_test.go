package commands

import (
	"strings"
	"testing"
)

// WALNUT_PARTITION_SIZE takes units, as WALNUT_RATE_LIMIT does: backup-push
// gets past its settings to connecting (to a server that is not there).
func TestPartitionSizeUnits(t *testing.T) {
	base := []string{"WALNUT_PREFIX=file://" + t.TempDir(), "PGHOST=/nonexistent", "PGPORT=1", "PGCONNECT_TIMEOUT=2"}
	for _, tt := range []struct {
		value   string
		setting bool // refused as a bad setting
	}{
		{"8MB", false},
		{"64MiB", false},
		{"1073741824", false},
		{"8XB", true},
		{"0", true},
	} {
		var out, errb strings.Builder
		code := Main([]string{"walnut", "--terse", "backup-push", t.TempDir()}, append(base, "WALNUT_PARTITION_SIZE="+tt.value), &out, &errb)
		refused := code == ExitUsage && strings.Contains(errb.String(), "WALNUT_PARTITION_SIZE")
		if refused != tt.setting || code == 0 {
			t.Errorf("WALNUT_PARTITION_SIZE=%s: exit %d, %s", tt.value, code, errb.String())
		}
	}
}

// WALNUT_CHUNK_SIZE takes units and refuses less than 1MiB.
func TestChunkSizeSetting(t *testing.T) {
	base := []string{"WALNUT_PREFIX=file://" + t.TempDir(), "PGHOST=/nonexistent", "PGPORT=1", "PGCONNECT_TIMEOUT=2"}
	for _, tt := range []struct {
		value   string
		setting bool // refused as a bad setting
	}{
		{"1MiB", false},
		{"64MiB", false},
		{"1048575", true},
		{"8XB", true},
		{"0", true},
	} {
		var out, errb strings.Builder
		code := Main([]string{"walnut", "--terse", "backup-push", t.TempDir()}, append(base, "WALNUT_CHUNK_SIZE="+tt.value), &out, &errb)
		refused := code == ExitUsage && strings.Contains(errb.String(), "WALNUT_CHUNK_SIZE")
		if refused != tt.setting || code == 0 {
			t.Errorf("WALNUT_CHUNK_SIZE=%s: exit %d, %s", tt.value, code, errb.String())
		}
	}
}
