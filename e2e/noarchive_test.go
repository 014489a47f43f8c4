package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// A prefix that holds no archive (a mistyped directory, a wrong path in a
// bucket that exists) is a fault, never an empty archive: wal-fetch exits
// 200 in archive recovery and 1 in standby mode, never 66, which would end
// recovery; the other commands exit 1. Each says so in one line naming the
// prefix, and nothing is created.
func TestPrefixWithoutAnArchive(t *testing.T) {
	minio := newS3Archive(t, startMinIO(t), "")
	for _, c := range []struct {
		name   string
		prefix string
		env    []string
	}{
		{"file", "file:///nonexistent/walnut-archive", nil},
		{"minio", minio.Prefix + "-mistyped", minio.Env},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := append([]string{"WALNUT_PREFIX=" + c.prefix}, c.env...)
			dir := testpg.SharedTempDir(t)
			oneLine := func(r result, code int, what string) {
				t.Helper()
				line := strings.TrimSpace(r.Stderr)
				if r.Code != code || !strings.Contains(line, c.prefix+": no walnut.json") || strings.Contains(line, "\n") {
					t.Errorf("%s: want exit %d and one line naming %s, got %s", what, code, c.prefix, r)
				}
			}
			seg := "000000010000000000000001"
			oneLine(run(t, dir, env, "wal-fetch", seg, filepath.Join(dir, "RECOVERYXLOG")), 200, "wal-fetch in archive recovery")
			standby := filepath.Join(dir, "standby")
			if err := os.MkdirAll(standby, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(standby, "standby.signal"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			oneLine(run(t, standby, env, "wal-fetch", seg, filepath.Join(standby, "RECOVERYXLOG")), 1, "wal-fetch in standby mode")
			oneLine(run(t, "", env, "backup-list"), 1, "backup-list")
			oneLine(run(t, "", env, "delete", "--confirm", "retain", "1"), 1, "delete retain")
			oneLine(run(t, "", env, "delete", "garbage"), 1, "delete garbage")
			dest := filepath.Join(dir, "restore")
			oneLine(run(t, "", env, "backup-fetch", "--no-recovery", dest, "LATEST"), 1, "backup-fetch")
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Errorf("backup-fetch created %s", dest)
			}
		})
	}
}
