package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// A backup is committed only once the WAL it needs is in walnut's archive.
// With archive_command storing elsewhere, backup-push fails after its
// timeout and lists nothing.
func TestBackupPushWaitsForItsWAL(t *testing.T) {
	a := newArchive(t)
	elsewhere := newArchive(t)
	src := testpg.New(t, testpg.Options{
		Conf: map[string]string{"archive_mode": "on", "archive_command": walnutBin + " wal-push %p"},
		Env:  []string{"WALNUT_PREFIX=" + elsewhere.Prefix},
	})
	src.Exec(t, "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
	r := run(t, "", env(a, src), "--terse", "backup-push", "--archive-timeout", "3s", src.DataDir)
	if r.Code == 0 || !strings.Contains(r.Stderr, "did not reach the archive within 3s") {
		t.Fatalf("backup-push with WAL archived elsewhere: %s", r)
	}
	if list := mustRun(t, "", env(a, nil), "backup-list", "--json").Stdout; strings.TrimSpace(list) != "[]" {
		t.Fatalf("a backup without its WAL is listed:\n%s", list)
	}
	if parts, _ := filepath.Glob(filepath.Join(a.Path, "backups", "*", "*")); len(parts) != 0 {
		t.Fatalf("the failed backup left parts behind: %v", parts)
	}
	// The server is out of backup mode: the same backup to the right
	// archive now succeeds.
	mustRun(t, "", env(elsewhere, src), "backup-push", src.DataDir)
}

func TestBackupPushRefusesWithoutArchiving(t *testing.T) {
	a := newArchive(t)
	src := testpg.New(t, testpg.Options{})
	r := run(t, "", env(a, src), "--terse", "backup-push", src.DataDir)
	if r.Code != 1 || !strings.Contains(r.Stderr, "archive_mode is off") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Fatalf("backup-push without archiving: %s", r)
	}
}

// A statement_timeout on the backup role must not cut the backup's
// checkpoint or stop: walnut's session turns it off.
func TestBackupPushIgnoresRoleStatementTimeout(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Exec(t, "CREATE ROLE backup SUPERUSER LOGIN")
	src.Exec(t, "ALTER ROLE backup SET statement_timeout = '1ms'")
	src.Exec(t, "CREATE TABLE t AS SELECT g FROM generate_series(1, 100000) g")
	r := mustRun(t, "", env(a, src, "PGUSER=backup"), "backup-push", src.DataDir)
	if names := backupNames(t, a); len(names) != 1 || names[0] != strings.TrimSpace(r.Stdout) {
		t.Fatalf("listed %v after backup %s", names, r.Stdout)
	}
}
