package commands

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/status"
)

// statusArchive is a file:// archive with one backup that finished an
// hour ago.
func statusArchive(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "walnut.json"), []byte(`{"format": 1, "system_identifier": "7"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := "base_000000010000000000000002_00000028"
	sn, _ := json.Marshal(map[string]any{"format": 1, "name": name, "finish_time": time.Now().Add(-time.Hour), "stored_size_bytes": 10})
	if err := os.MkdirAll(filepath.Join(dir, "backups"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "backups", name+".json"), sn, 0o600); err != nil {
		t.Fatal(err)
	}
	return "file://" + dir
}

func TestStatusExitCodes(t *testing.T) {
	prefix := statusArchive(t)
	run := func(env []string, args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		code := Main(append([]string{"walnut", "--prefix", prefix}, args...), env, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	for _, c := range []struct {
		env   []string
		args  []string
		code  int
		first string
	}{
		{nil, []string{"status", "--no-server"}, ExitOK, "WALNUT OK: newest backup base_000000010000000000000002_00000028 finished 1h0m0s ago"},
		{nil, []string{"status", "--no-server", "--max-backup-age", "30m,2h"}, ExitWarning, "WALNUT WARNING: newest backup"},
		{nil, []string{"status", "--no-server", "--max-backup-age", "30m"}, ExitCritical, "WALNUT CRITICAL: newest backup"},
		{[]string{"WALNUT_STATUS_MAX_BACKUP_AGE=30m"}, []string{"status", "--no-server"}, ExitCritical, "WALNUT CRITICAL: newest backup"},
		// The flag wins over the variable.
		{[]string{"WALNUT_STATUS_MAX_BACKUP_AGE=30m"}, []string{"status", "--no-server", "--max-backup-age", "2h"}, ExitOK, "WALNUT OK"},
		// Settings that are present but not understood: UNKNOWN, one line
		// naming them.
		{[]string{"WALNUT_STATUS_MAX_BACKUP_AGE=soon"}, []string{"status", "--no-server"}, ExitUnknown, `WALNUT UNKNOWN: WALNUT_STATUS_MAX_BACKUP_AGE="soon": want a duration`},
		{[]string{"WALNUT_STATUS_MAX_ARCHIVE_LAG=2,1"}, []string{"status", "--no-server"}, ExitUnknown, "WALNUT UNKNOWN: WALNUT_STATUS_MAX_ARCHIVE_LAG=\"2,1\": the warning bound is above the critical one"},
		{nil, []string{"status", "--no-server", "--max-replication-lag", "30s,64MB"}, ExitUnknown, `WALNUT UNKNOWN: --max-replication-lag="30s,64MB": critical bound`},
		{nil, []string{"status", "--no-such-flag"}, ExitUnknown, "WALNUT UNKNOWN: flag provided but not defined"},
		{nil, []string{"status", "--timeout", "0s"}, ExitUnknown, "WALNUT UNKNOWN: status: --timeout 0s"},
		{nil, []string{"status", "a", "b"}, ExitUnknown, "WALNUT UNKNOWN: status: want at most one PGDATA"},
		{nil, []string{"--log-format", "yaml", "status"}, ExitUnknown, "WALNUT UNKNOWN: --log-format"},
		{[]string{"WALNUT_LOG_LEVEL=loud"}, []string{"status"}, ExitUnknown, "WALNUT UNKNOWN: WALNUT_LOG_LEVEL"},
		// No server where libpq looks: the archive half, and UNKNOWN.
		{[]string{"PGHOST=" + t.TempDir(), "PGPORT=1"}, []string{"status"}, ExitUnknown, "WALNUT UNKNOWN: server not reached: connect to PostgreSQL"},
	} {
		code, stdout, stderr := run(c.env, c.args...)
		first, _, _ := strings.Cut(stdout, "\n")
		if code != c.code || !strings.HasPrefix(first, c.first) {
			t.Errorf("%v %q: exit %d, first line %q; want %d, %q\n%s", c.env, c.args, code, first, c.code, c.first, stderr)
		}
		if c.code == ExitUnknown && strings.Count(strings.TrimSpace(stdout), "\n") != 0 && strings.Contains(first, "UNKNOWN: ") && !strings.Contains(first, "server not reached") {
			t.Errorf("%q: a refused setting takes one line, got:\n%s", c.args, stdout)
		}
	}

	var stdout strings.Builder
	prom := filepath.Join(t.TempDir(), "walnut.prom")
	alerts := filepath.Join(t.TempDir(), "alerts")
	empty := "file://" + t.TempDir()
	code := Main([]string{"walnut", "--prefix", empty, "status", "--json", "--no-server", "--prometheus-file", prom, "--alert-dir", alerts}, nil, &stdout, os.Stderr)
	var r status.Report
	if err := json.Unmarshal([]byte(stdout.String()), &r); err != nil || code != ExitCritical || r.State != status.Critical {
		t.Fatalf("empty archive: exit %d, %v\n%s", code, err, stdout.String())
	}
	if _, err := os.Stat(filepath.Join(alerts, status.AlertArchiveMissing)); err != nil {
		t.Errorf("no archive_missing alert: %v", err)
	}
	if b, err := os.ReadFile(prom); err != nil || !strings.Contains(string(b), `walnut_archive_up{archive="`+empty+`"} 0`) {
		t.Errorf("metrics: %v\n%s", err, b)
	}
	// A metrics file that cannot be written: the check still answers,
	// never better than UNKNOWN.
	var stderr strings.Builder
	code = Main([]string{"walnut", "--prefix", prefix, "status", "--no-server", "--prometheus-file", "/nonexistent/dir/walnut.prom"}, nil, &stdout, &stderr)
	if code != ExitUnknown || !strings.Contains(stderr.String(), "write metrics to /nonexistent/dir/walnut.prom") {
		t.Errorf("unwritable metrics file: exit %d\n%s", code, stderr.String())
	}
}
