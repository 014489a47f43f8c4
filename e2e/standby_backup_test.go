package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// backup-push against a streaming standby: the standby cannot switch WAL
// segments, so the backup waits until the primary archives the last one,
// then restores like any other.
func TestBackupFromStandby(t *testing.T) {
	a := newArchive(t)
	primary := archivingCluster(t, a, nil)
	primary.Pgbench(t, "-i", "-s", "2", "-q")

	standbyDir := filepath.Join(testpg.SharedTempDir(t), "standby")
	out, err := primary.Command(t.Context(), nil, filepath.Join(primary.BinDir, "pg_basebackup"),
		"-D", standbyDir, "-R", "-X", "stream", "-c", "fast").CombinedOutput()
	if err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	standby := testpg.Start(t, standbyDir, testpg.Options{Env: []string{"WALNUT_PREFIX=" + a.Prefix}})
	primary.Pgbench(t, "-n", "-t", "100", "postgres")
	want := primary.QueryString(t, tableDigest)
	waitReplayed(t, primary, standby)

	// The primary switches segments until the backup has what it needs.
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	go func() {
		for ctx.Err() == nil {
			primary.ExecErr(ctx, "SELECT pg_switch_wal()")
			time.Sleep(300 * time.Millisecond)
		}
	}()
	r := mustRun(t, "", env(a, standby), "backup-push", standbyDir)
	stop()
	name := strings.TrimSpace(r.Stdout)

	dest := filepath.Join(a.Dir, "restored")
	mustRun(t, "", env(a, nil), "backup-fetch", dest, name)
	if _, err := os.Stat(filepath.Join(dest, "standby.signal")); err == nil {
		t.Fatal("the standby's standby.signal was restored: the restore would never finish recovery")
	}
	verifyBackup(t, dest)
	restored := startRestored(t, a, dest)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("restored from the standby's backup: digest %s, want %s", got, want)
	}
}

// waitReplayed waits until standby has replayed everything primary wrote.
func waitReplayed(t *testing.T, primary, standby *testpg.Cluster) {
	t.Helper()
	lsn := primary.QueryString(t, "SELECT pg_current_wal_lsn()::text")
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if standby.QueryString(t, "SELECT (pg_last_wal_replay_lsn() >= '"+lsn+"')::text") == "true" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("standby did not replay up to %s\n%s", lsn, standby.LogTail(20))
}
