package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// Bad input is answered by one line on stderr, not a stack trace or a
// usage dump, and a non-zero exit.
func TestBadInputOneLine(t *testing.T) {
	a := newArchive(t)
	c := testpg.New(t, testpg.Options{})
	dest := filepath.Join(a.Dir, "dest")
	unreachable := []string{"PGHOST=/nonexistent-socket-dir", "PGPORT=1", "PGUSER=postgres", "PGDATABASE=postgres", "PGCONNECT_TIMEOUT=5"}
	cases := []struct {
		name     string
		env      []string
		args     []string
		code     int // 0: any non-zero
		mentions []string
	}{
		{name: "no prefix", env: c.Env(), args: []string{"backup-list"}, code: 2, mentions: []string{"WALNUT_PREFIX"}},
		{name: "unknown scheme", env: []string{"WALNUT_PREFIX=ftp://x/y"}, args: []string{"backup-list"}, code: 2, mentions: []string{"ftp"}},
		// A store in memory would die with the process: "archived", and
		// the next process finds nothing.
		{name: "mem scheme", env: []string{"WALNUT_PREFIX=mem://x"}, args: []string{"wal-push", filepath.Join(c.DataDir, "pg_wal", "000000010000000000000001")}, code: 2, mentions: []string{`scheme "mem"`, "file:///"}},
		{name: "unreadable PGDATA", env: env(a, c), args: []string{"backup-push", "/nonexistent/dir"}, mentions: []string{"/nonexistent/dir"}},
		{name: "server unreachable", env: append([]string{"WALNUT_PREFIX=" + a.Prefix}, unreachable...), args: []string{"backup-push", c.DataDir}, mentions: []string{"connect"}},
		{name: "unknown codec", env: env(a, c, "WALNUT_COMPRESSION=brotli"), args: []string{"backup-push", c.DataDir}, code: 2, mentions: []string{"brotli"}},
		{name: "not an archive", env: env(a, nil), args: []string{"backup-fetch", dest, "nosuchbackup"}, mentions: []string{a.Prefix, "no walnut.json"}},
		{name: "unknown backup", env: env(a, nil), args: []string{"backup-fetch", dest, "nosuchbackup"}, mentions: []string{"nosuchbackup"}},
	}
	for _, tc := range cases {
		if tc.name == "unknown backup" {
			// From here on the prefix is an archive, of c's cluster.
			if err := os.MkdirAll(a.Path, 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(a.Path, "walnut.json"), []byte(`{"format": 1, "system_identifier": "7"}`), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := testpg.ChownToServer(a.Path); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, "", tc.env, append([]string{"--terse"}, tc.args...)...)
			switch {
			case tc.code != 0 && r.Code != tc.code:
				t.Errorf("want exit %d, got %s", tc.code, r)
			case r.Code == 0:
				t.Errorf("want a non-zero exit, got %s", r)
			}
			msg := strings.TrimSpace(r.Stderr)
			if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "walnut: ") {
				t.Errorf("want exactly one line starting with \"walnut: \" on stderr, got:\n%s", r.Stderr)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(msg, m) {
					t.Errorf("error does not mention %q: %s", m, msg)
				}
			}
		})
	}
	assertEmptyOrAbsent(t, dest)
}

// backup-list's formats: WAL-E's CSV, JSON, a table, and --detail.
func TestBackupListFormats(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	name := strings.TrimSpace(mustRun(t, "", env(a, src), "backup-push", src.DataDir).Stdout)

	csv := mustRun(t, "", env(a, nil), "backup-list", "--csv").Stdout
	lines := strings.Split(strings.TrimRight(csv, "\n"), "\n")
	const walEHeader = "name,last_modified,expanded_size_bytes,wal_segment_backup_start,wal_segment_offset_backup_start,wal_segment_backup_stop,wal_segment_offset_backup_stop"
	if len(lines) != 2 || lines[0] != walEHeader || !strings.HasPrefix(lines[1], name+",") {
		t.Errorf("backup-list --csv: want WAL-E's header and one row for %s, got:\n%s", name, csv)
	}
	if len(lines) == 2 {
		if cols := strings.Split(lines[1], ","); len(cols) != 7 || !strings.HasPrefix(name, "base_"+cols[3]+"_") {
			t.Errorf("backup-list --csv row %q: want 7 columns with the start segment in the name", lines[1])
		}
	}

	if names := backupNames(t, a); len(names) != 1 || names[0] != name {
		t.Errorf("backup-list --json names %v, want [%s]", names, name)
	}

	table := mustRun(t, "", env(a, nil), "backup-list").Stdout
	if !strings.Contains(table, name) || strings.Contains(table, "compression") {
		t.Errorf("backup-list: want a table naming %s without detail columns, got:\n%s", name, table)
	}
	detail := mustRun(t, "", env(a, nil), "backup-list", "--detail").Stdout
	if !strings.Contains(detail, name) || !strings.Contains(detail, "compression") || !strings.Contains(detail, "zstd") {
		t.Errorf("backup-list --detail: want %s with a compression column showing zstd, got:\n%s", name, detail)
	}
}
