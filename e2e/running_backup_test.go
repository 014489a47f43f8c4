package e2e

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/storage"
)

// A delete run while a backup-push is under way keeps that backup and the
// WAL from its start, wherever the push has got to: before any part is
// visible (the marker alone says it runs), and with parts stored. The
// backup then finishes and restores.
func TestDeleteKeepsARunningBackup(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	// Hex digests compress about 2:1: the backup stores several MB, which
	// the rate limit below spreads over seconds.
	src.Exec(t, "CREATE TABLE noise AS SELECT md5(random()::text) || md5(random()::text) AS x FROM generate_series(1, 150000)")
	switchAndWaitArchived(t, src)
	s := openArchive(t, a)

	cmd := testpg.Command(t.Context(), env(a, src, "WALNUT_RATE_LIMIT=300kB", "WALNUT_PARTITION_SIZE=1048576"),
		walnutBin, "backup-push", src.DataDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})

	// waitFor polls the archive until a key under backups/ satisfies ok.
	waitFor := func(what string, ok func(key string) bool) string {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			for k := range listObjects(t, s, "backups/") {
				if ok(k) {
					return k
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no %s within 2 minutes:\n%s", what, stderr.String())
		return ""
	}
	marker := waitFor("running marker", func(k string) bool { return strings.HasSuffix(k, "/running.json") })
	running := strings.Split(strings.TrimPrefix(marker, "backups/"), "/")[0]
	startSeg := running[len("base_"):][:24]

	deleteWhileRunning := func(point string) {
		t.Helper()
		src.Exec(t, "INSERT INTO noise SELECT md5(random()::text) FROM generate_series(1, 1000)")
		switchAndWaitArchived(t, src)
		mustRun(t, "", env(a, src), "backup-push", src.DataDir)
		for range 3 {
			src.Exec(t, "INSERT INTO noise SELECT md5(random()::text) FROM generate_series(1, 1000)")
			switchAndWaitArchived(t, src)
		}
		out := mustRun(t, "", env(a, nil), "delete", "--confirm", "retain", "1").Stdout
		if !strings.Contains(out, running) {
			t.Errorf("%s: delete's report does not name the running backup %s as kept:\n%s", point, running, out)
		}
		if len(listObjects(t, s, "wal/"+startSeg+"-")) != 1 {
			t.Fatalf("%s: delete removed %s, the running backup's start segment:\n%s", point, startSeg, out)
		}
		if len(listObjects(t, s, marker)) != 1 {
			t.Fatalf("%s: delete removed the running backup's marker:\n%s", point, out)
		}
	}
	if parts := listObjects(t, s, "backups/"+running+"/part_"); len(parts) != 0 {
		t.Logf("a part was visible before the first delete; the test's before-any-part point was missed: %v", parts)
	}
	deleteWhileRunning("before any part")
	waitFor("partition of the running backup", func(k string) bool { return strings.HasPrefix(k, "backups/"+running+"/part_") })
	deleteWhileRunning("with parts")

	select {
	case <-done:
		if waitErr != nil {
			t.Fatalf("the running backup failed after the deletes: %v\n%s", waitErr, stderr.String())
		}
	case <-time.After(5 * time.Minute):
		t.Fatalf("the running backup did not finish:\n%s", stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != running {
		t.Fatalf("backup-push printed %q, the marker named %q", got, running)
	}
	if _, err := s.Stat(t.Context(), marker); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the marker of the finished backup is still there (%v)", err)
	}
	want := src.QueryString(t, "SELECT count(*) FROM noise")
	switchAndWaitArchived(t, src)
	dest := filepath.Join(a.Dir, "restore")
	mustRun(t, "", env(a, nil), "backup-fetch", dest, running)
	restored := startRestored(t, a, dest)
	if got := restored.QueryString(t, "SELECT count(*) FROM noise"); got != want {
		t.Errorf("restored %s to the end: %s rows, the source has %s", running, got, want)
	}
}
