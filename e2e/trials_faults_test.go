package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// Disk and permission faults (issue 18, part 4).

// mountTmpfs mounts a tmpfs of size (mount(8)'s syntax, e.g. "8m") at dir,
// owned by the server user, and unmounts it when the test ends. Mounting
// needs root (CAP_SYS_ADMIN): without it the test skips, or fails under
// WALNUT_TEST_REQUIRE=all (dependency "tmpfs").
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("mount -t tmpfs: %v: %s", err, out)
	}
	testpg.Require(t, "tmpfs", err)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	if err := testpg.ChownToServer(dir); err != nil {
		t.Fatal(err)
	}
}

func remountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,size="+size, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s: %v: %s", dir, err, out)
	}
}

// oneLine fails unless stderr holds exactly one line containing every
// one of want.
func oneLine(t *testing.T, what string, r result, want ...string) {
	t.Helper()
	line := strings.TrimSpace(r.Stderr)
	if strings.Contains(line, "\n") {
		t.Errorf("%s: more than one line on stderr:\n%s", what, r.Stderr)
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("%s: stderr does not name %q:\n%s", what, w, r.Stderr)
		}
	}
}

// entries lists dir's names; a missing dir has none.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// backup-fetch onto a filesystem too small for the backup: one line
// naming the path and ENOSPC, exit 1, DEST emptied (the failure path
// removes what it wrote); once there is room the same DEST restores.
func TestFaultBackupFetchFullFilesystem(t *testing.T) {
	a := newArchive(t)
	c := trialCluster(t, a)
	name := strings.TrimSpace(mustRun(t, "", partitioned(a, c), "backup-push", c.DataDir).Stdout)
	c.Stop(t)
	fs := filepath.Join(testpg.SharedTempDir(t), "small")
	mountTmpfs(t, fs, "8m")
	dest := filepath.Join(fs, "pgdata")
	r := run(t, "", env(a, nil), "backup-fetch", dest, name)
	if r.Code != 1 {
		t.Fatalf("backup-fetch onto a full filesystem: %s", r)
	}
	oneLine(t, "backup-fetch onto a full filesystem", r, dest, "no space left on device", "the partial restore was removed")
	if left := entries(t, dest); len(left) != 0 {
		t.Fatalf("after ENOSPC DEST holds %v", left)
	}
	t.Logf("%s", strings.TrimSpace(r.Stderr))
	remountTmpfs(t, fs, "256m")
	mustRun(t, "", env(a, nil), "backup-fetch", dest, name)
	verifyBackup(t, dest)
}

// wal-fetch into a full pg_wal, during archive recovery and in standby
// mode: exit 200 (PostgreSQL stops rather than ending recovery as if the
// archive ended) or 1 (a standby retries), one line naming the path and
// ENOSPC, no file under DEST and no temp file left; with room it fetches.
func TestFaultWALFetchFullPGWAL(t *testing.T) {
	a := newArchive(t)
	c := trialCluster(t, a)
	seg := c.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	switchAndWaitArchived(t, c)
	c.Stop(t)
	data := filepath.Join(testpg.SharedTempDir(t), "data")
	walDir := filepath.Join(data, "pg_wal")
	mountTmpfs(t, walDir, "12m") // a 16 MiB segment does not fit
	if err := os.Mkdir(filepath.Join(walDir, "archive_status"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(data); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct {
		name   string
		signal bool
		code   int
	}{{"archive recovery", false, 200}, {"standby", true, 1}} {
		os.Remove(filepath.Join(data, "standby.signal"))
		if mode.signal {
			if err := os.WriteFile(filepath.Join(data, "standby.signal"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		r := run(t, data, env(a, nil), "wal-fetch", "--prefetch", "0", seg, "pg_wal/RECOVERYXLOG")
		if r.Code != mode.code {
			t.Fatalf("%s: wal-fetch into a full pg_wal exited %d, want %d: %s", mode.name, r.Code, mode.code, r)
		}
		oneLine(t, mode.name+": wal-fetch into a full pg_wal", r, "RECOVERYXLOG", "no space left on device")
		if left := entries(t, walDir); len(left) != 1 {
			t.Fatalf("%s: after ENOSPC pg_wal holds %v", mode.name, left)
		}
		t.Logf("%s: exit %d: %s", mode.name, r.Code, strings.TrimSpace(r.Stderr))
	}
	remountTmpfs(t, walDir, "64m")
	mustRun(t, data, env(a, nil), "wal-fetch", "--prefetch", "0", seg, "pg_wal/RECOVERYXLOG")
}

// A file:// archive that turns read-only under a running server: wal-push
// fails with one line naming the path, the server keeps the segment
// .ready and retries; backup-push fails in one line and lists nothing;
// reading (backup-list, backup-fetch, wal-fetch) still works. Writable
// again, archiving catches up and the invariants hold.
func TestFaultReadOnlyArchive(t *testing.T) {
	a := newArchive(t)
	c := trialCluster(t, a)
	name := strings.TrimSpace(mustRun(t, "", partitioned(a, c), "backup-push", c.DataDir).Stdout)
	chmod := func(mode string) {
		t.Helper()
		if out, err := exec.Command("chmod", "-R", mode, a.Path).CombinedOutput(); err != nil {
			t.Fatalf("chmod -R %s: %v: %s", mode, err, out)
		}
	}
	chmod("a-w")
	t.Cleanup(func() { chmod("u+w") })

	c.Exec(t, "INSERT INTO pgbench_history SELECT 1, 1, 1, 1, now()")
	seg := c.QueryString(t, "SELECT pg_walfile_name(pg_switch_wal())")
	deadline := time.Now().Add(time.Minute)
	for c.QueryString(t, "SELECT coalesce(last_failed_wal, '')  FROM pg_stat_archiver") != seg {
		if time.Now().After(deadline) {
			t.Fatalf("the archiver did not fail on %s within a minute\n%s", seg, c.LogTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	ready := filepath.Join(c.DataDir, "pg_wal", "archive_status", seg+".ready")
	if _, err := os.Stat(ready); err != nil {
		t.Fatalf("%s is not .ready while the archive is read-only: %v", seg, err)
	}
	r := run(t, c.DataDir, env(a, c), "wal-push", "pg_wal/"+seg)
	if r.Code == 0 {
		t.Fatalf("wal-push into a read-only archive: %s", r)
	}
	oneLine(t, "wal-push into a read-only archive", r, a.Path, "permission denied")
	t.Logf("wal-push: exit %d: %s", r.Code, strings.TrimSpace(r.Stderr))

	b := run(t, "", partitioned(a, c), "backup-push", c.DataDir)
	if b.Code != 1 {
		t.Fatalf("backup-push into a read-only archive: %s", b)
	}
	oneLine(t, "backup-push into a read-only archive", b, a.Path, "permission denied")
	if got := backupNames(t, a); len(got) != 1 || got[0] != name {
		t.Fatalf("backups after a refused backup-push: %v", got)
	}
	dest := filepath.Join(testpg.SharedTempDir(t), "restore")
	mustRun(t, "", env(a, nil), "backup-fetch", "--no-recovery", dest, name)
	verifyBackup(t, dest)
	mustRun(t, "", env(a, nil), "wal-fetch", name[len("base_"):][:24], filepath.Join(testpg.SharedTempDir(t), "seg"))

	chmod("u+w")
	switchAndWaitArchived(t, c)
	newInvariants(t, a).check(t, c)
}

// An object walnut cannot read (mode 0000 under a server user that is not
// root): backup-fetch fails in one line naming the key and the
// permission, leaving DEST empty; wal-fetch exits 200 in archive recovery
// (never 66, which would end recovery as if the archive ended there) and
// 1 in standby mode.
func TestFaultUnreadableObject(t *testing.T) {
	a := newArchive(t)
	c := trialCluster(t, a)
	name := strings.TrimSpace(mustRun(t, "", partitioned(a, c), "backup-push", c.DataDir).Stdout)
	seg := c.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	switchAndWaitArchived(t, c)
	c.Stop(t)
	parts, _ := filepath.Glob(filepath.Join(a.Path, "backups", name, "part_0001.tar*"))
	wals, _ := filepath.Glob(filepath.Join(a.Path, "wal", seg+"-*"))
	if len(parts) != 1 || len(wals) != 1 {
		t.Fatalf("partition %v, WAL %v", parts, wals)
	}
	for _, p := range []string{parts[0], wals[0]} {
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
	}

	dest := filepath.Join(testpg.SharedTempDir(t), "restore")
	r := run(t, "", env(a, nil), "backup-fetch", dest, name)
	if r.Code != 1 {
		t.Fatalf("backup-fetch with an unreadable partition: %s", r)
	}
	oneLine(t, "backup-fetch with an unreadable partition", r, filepath.Base(parts[0]), "permission denied")
	if left := entries(t, dest); len(left) != 0 {
		t.Fatalf("after a failed backup-fetch DEST holds %v", left)
	}
	t.Logf("backup-fetch: %s", strings.TrimSpace(r.Stderr))

	data := standInDataDir(t)
	for _, mode := range []struct {
		name   string
		signal bool
		code   int
	}{{"archive recovery", false, 200}, {"standby", true, 1}} {
		os.Remove(filepath.Join(data, "standby.signal"))
		if mode.signal {
			if err := os.WriteFile(filepath.Join(data, "standby.signal"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r := run(t, data, env(a, nil), "wal-fetch", "--prefetch", "0", seg, "pg_wal/RECOVERYXLOG")
		if r.Code != mode.code {
			t.Fatalf("%s: wal-fetch of an unreadable object exited %d, want %d: %s", mode.name, r.Code, mode.code, r)
		}
		oneLine(t, mode.name+": wal-fetch of an unreadable object", r, seg, "permission denied")
		if _, err := os.Stat(filepath.Join(data, "pg_wal", "RECOVERYXLOG")); err == nil {
			t.Fatalf("%s: wal-fetch of an unreadable object wrote DEST", mode.name)
		}
		t.Logf("%s: exit %d: %s", mode.name, r.Code, strings.TrimSpace(r.Stderr))
	}
}
