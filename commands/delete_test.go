package commands

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Flags may follow the form, as WAL-G users write them, and an empty
// archive is nothing to do: exit 0.
func TestDeleteCommandLine(t *testing.T) {
	dir := t.TempDir()
	prefix := "file://" + dir
	if err := os.WriteFile(filepath.Join(dir, "walnut.json"), []byte(`{"format": 1, "system_identifier": "7"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"delete", "retain", "7", "--confirm"},
		{"delete", "--confirm", "retain", "7"},
		{"delete", "before", "--time", "2026-11-26T03:00:00Z", "--confirm", "--grace", "1h"},
		{"delete", "garbage", "--grace", "30m"},
		{"delete", "before", "LATEST"},
	} {
		var stdout, stderr strings.Builder
		code := Main(append([]string{"walnut", "--prefix", prefix}, args...), nil, &stdout, &stderr)
		if code != ExitOK || !strings.Contains(stdout.String(), "nothing to delete") {
			t.Errorf("%q: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
		}
	}
	var stdout strings.Builder
	if code := Main([]string{"walnut", "--prefix", prefix, "delete", "everything", "--json"}, nil, &stdout, io.Discard); code != ExitOK {
		t.Fatalf("delete everything --json: exit %d", code)
	}
	var out struct {
		DryRun  *bool             `json:"dry_run"`
		Backups []json.RawMessage `json:"backups"`
		Objects *int              `json:"objects"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &out); err != nil || out.DryRun == nil || !*out.DryRun || out.Backups == nil || out.Objects == nil {
		t.Errorf("delete --json: %v\n%s", err, stdout.String())
	}
	for _, args := range [][]string{{"delete"}, {"delete", "retain", "0"}, {"delete", "garbage", "--grace", "-1h"}, {"backup-mark"}} {
		if code := Main(append([]string{"walnut", "--prefix", prefix}, args...), nil, io.Discard, io.Discard); code != ExitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, ExitUsage)
		}
	}
	if code := Main([]string{"walnut", "--prefix", prefix, "delete", "before", "base_000000010000000000000002_00000028"}, nil, io.Discard, io.Discard); code != ExitFailure {
		t.Errorf("delete before a missing backup: exit %d, want %d", code, ExitFailure)
	}
}

// A prefix that holds no archive is a fault, never an empty archive:
// every command that reads one fails with a line naming the prefix.
func TestCommandsRefuseAPrefixWithoutAnArchive(t *testing.T) {
	for _, prefix := range []string{"file:///nonexistent/walnut-archive", "file://" + t.TempDir()} {
		for _, args := range [][]string{
			{"backup-list"},
			{"delete", "retain", "1"},
			{"delete", "--confirm", "garbage"},
			{"delete", "everything"},
			{"backup-mark", "LATEST"},
			{"backup-fetch", filepath.Join(t.TempDir(), "restore"), "LATEST"},
		} {
			var stdout, stderr strings.Builder
			code := Main(append([]string{"walnut", "--prefix", prefix}, args...), nil, &stdout, &stderr)
			if code != ExitFailure || !strings.Contains(stderr.String(), prefix+": no walnut.json") || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
				t.Errorf("%s %q: exit %d, want %d with one line naming the prefix\nstdout: %s\nstderr: %s", prefix, args, code, ExitFailure, stdout.String(), stderr.String())
			}
		}
	}
}

// wal-fetch answers "not in the archive" (66, which ends recovery) only
// from an archive; under a prefix without one it is a failure: 200 in
// archive recovery.
func TestWALFetchWithoutAnArchiveIsNotNotFound(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	var stderr strings.Builder
	code := Main([]string{"walnut", "--prefix", "file:///nonexistent/walnut-archive", "wal-fetch", "000000010000000000000001", dest}, nil, io.Discard, &stderr)
	if code != ExitWALFetchFatal || !strings.Contains(stderr.String(), "file:///nonexistent/walnut-archive: no walnut.json") {
		t.Errorf("exit %d, want %d: %s", code, ExitWALFetchFatal, stderr.String())
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "walnut.json"), []byte(`{"format": 1, "system_identifier": "7"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := Main([]string{"walnut", "--prefix", "file://" + dir, "wal-fetch", "000000010000000000000001", dest}, nil, io.Discard, io.Discard); code != ExitWALNotFound {
		t.Errorf("a segment missing from an archive: exit %d, want %d", code, ExitWALNotFound)
	}
}
