package commands

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/retention"
)

func TestDeletePolicy(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		args []string
		time string
		want retention.Policy
		bad  bool
	}{
		{args: []string{"retain", "7"}, want: retention.Policy{Mode: retention.Retain, Retain: 7}},
		{args: []string{"before", "base_000000010000000000000002_00000028"}, want: retention.Policy{Mode: retention.Before, Name: "base_000000010000000000000002_00000028"}},
		{args: []string{"before", "LATEST"}, want: retention.Policy{Mode: retention.Before, Name: "LATEST"}},
		{args: []string{"before"}, time: "2026-11-26T03:00:00Z", want: retention.Policy{Mode: retention.BeforeTime, Time: at}},
		{args: []string{"before"}, time: "2026-11-26 04:00:00+01", want: retention.Policy{Mode: retention.BeforeTime, Time: at}},
		{args: []string{"garbage"}, want: retention.Policy{Mode: retention.Garbage}},
		{args: []string{"everything"}, want: retention.Policy{Mode: retention.Everything}},
		{args: nil, bad: true},
		{args: []string{"retain"}, bad: true},
		{args: []string{"retain", "0"}, bad: true},
		{args: []string{"retain", "-1"}, bad: true},
		{args: []string{"retain", "seven"}, bad: true},
		{args: []string{"retain", "7"}, time: "2026-11-26T03:00:00Z", bad: true},
		{args: []string{"before"}, bad: true},
		{args: []string{"before", "x"}, time: "2026-11-26T03:00:00Z", bad: true},
		{args: []string{"before"}, time: "2026-11-26 03:00:00", bad: true}, // no zone
		{args: []string{"garbage", "now"}, bad: true},
		{args: []string{"everything", "--force"}, bad: true},
		{args: []string{"old-versions"}, bad: true},
	}
	for _, c := range cases {
		got, err := deletePolicy(c.args, c.time)
		if c.bad {
			if err == nil {
				t.Errorf("deletePolicy(%q, %q) accepted: %+v", c.args, c.time, got)
			}
			continue
		}
		if err != nil || got.Mode != c.want.Mode || got.Retain != c.want.Retain || got.Name != c.want.Name || !got.Time.Equal(c.want.Time) {
			t.Errorf("deletePolicy(%q, %q) = %+v, %v; want %+v", c.args, c.time, got, err, c.want)
		}
	}
}

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

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 20: "3.0 MiB", 5 << 40: "5.0 TiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
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
