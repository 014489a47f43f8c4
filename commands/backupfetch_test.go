package commands

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An empty or malformed recovery target is refused, with one line, before
// anything is read or restored: an unquoted shell variable once turned a
// point-in-time recovery into a recovery to the end.
func TestBackupFetchRefusesBadTargetsBeforeRestoring(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "walnut.json"), []byte(`{"format": 1, "system_identifier": "7"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, flags := range [][]string{
		{"--recovery-target-time", "", "--recovery-target-action", "promote"},
		{"--recovery-target-time", "not a time"},
		{"--recovery-target-lsn", ""},
		{"--recovery-target-xid", "abc"},
		{"--recovery-target-name", ""},
		{"--recovery-target-action", "promote"},
		{"--no-recovery", "--recovery-target-name", "x"},
	} {
		dest := filepath.Join(t.TempDir(), "restore")
		var stderr strings.Builder
		args := append([]string{"walnut", "--prefix", "file://" + dir, "backup-fetch", dest, "LATEST"}, flags...)
		code := Main(args, nil, io.Discard, &stderr)
		if code != ExitUsage || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
			t.Errorf("%q: exit %d, want %d with one line: %s", flags, code, ExitUsage, stderr.String())
		}
		if _, err := os.Stat(dest); !os.IsNotExist(err) {
			t.Errorf("%q: %s was created", flags, dest)
		}
	}
}
