package e2e

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// backupNames parses backup-list --json into the backups' names.
func backupNames(t *testing.T, a *archive) []string {
	t.Helper()
	out := mustRun(t, "", env(a, nil), "backup-list", "--json").Stdout
	var list []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("backup-list --json: %v\n%s", err, out)
	}
	var names []string
	for _, b := range list {
		names = append(names, b.Name)
	}
	return names
}

// assertEmptyOrAbsent fails unless dir is missing or has no entries.
func assertEmptyOrAbsent(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%s holds %v after a failed restore; want it empty or absent", dir, names)
	}
}

// A backup-push killed outright leaves nothing that lists or restores as a
// backup, and the server is not left in backup mode.
func TestBackupPushKilled(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Pgbench(t, "-i", "-s", "10", "-q")
	first := strings.TrimSpace(mustRun(t, "", env(a, src), "backup-push", src.DataDir).Stdout)

	cmd := testpg.Command(t.Context(), env(a, src, "WALNUT_PARTITION_SIZE=1048576", "WALNUT_COMPRESSION=gzip:9"),
		walnutBin, "backup-push", src.DataDir)
	// runuser does not pass SIGKILL on: kill the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	killed := false
	defer func() {
		if !killed {
			syscall.Kill(-pid, syscall.SIGKILL)
			cmd.Wait()
		}
	}()
	var second string
	deadline := time.Now().Add(2 * time.Minute)
	for second == "" {
		m, err := filepath.Glob(filepath.Join(a.Path, "backups", "*", "part_0001*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			if n := filepath.Base(filepath.Dir(p)); n != first {
				second = n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("second backup-push stored no part_0001 within 2 minutes:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.ProcessState.Sys().(syscall.WaitStatus).Signaled() {
		t.Fatalf("second backup-push was not killed mid-way (wait: %v):\n%s", err, out.String())
	}
	if _, err := os.Stat(filepath.Join(a.Path, "backups", second+".json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("killed backup %s has a sentinel (err %v)", second, err)
	}

	if names := backupNames(t, a); len(names) != 1 || names[0] != first {
		t.Fatalf("backup-list after the killed push: %v, want only %s", names, first)
	}
	dest := filepath.Join(a.Dir, "restored")
	r := mustRun(t, "", env(a, nil), "backup-fetch", dest, "LATEST", "--no-recovery")
	if !strings.Contains(r.Stdout, first) || strings.Contains(r.Stdout, second) {
		t.Errorf("backup-fetch LATEST after the killed push did not restore %s:\n%s", first, r.Stdout)
	}
	if _, err := os.Stat(filepath.Join(dest, "global", "pg_control")); err != nil {
		t.Errorf("restore of %s has no global/pg_control: %v", first, err)
	}

	// The killed walnut's session, and with it its backup, ends once the
	// server sees the connection closed.
	deadline = time.Now().Add(30 * time.Second)
	for {
		n := src.QueryString(t, "SELECT count(*)::text FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
		if n == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s client sessions still open 30s after the kill: walnut or its backup session survived", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	third := strings.TrimSpace(mustRun(t, "", env(a, src), "backup-push", src.DataDir).Stdout)
	if names := backupNames(t, a); len(names) != 2 || names[1] != third {
		t.Errorf("backup-list after a new push: %v, want [%s %s]", names, first, third)
	}
}

// One flipped byte in a stored partition fails the restore, names the
// object, and leaves nothing that looks like a data directory.
func TestBackupFetchCorruptPartition(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Pgbench(t, "-i", "-s", "2", "-q")
	for _, tc := range []struct{ codec, ext string }{{"none", ""}, {"zstd", ".zst"}} {
		t.Run(tc.codec, func(t *testing.T) {
			name := strings.TrimSpace(mustRun(t, "", env(a, src, "WALNUT_COMPRESSION="+tc.codec), "backup-push", src.DataDir).Stdout)
			key := "backups/" + name + "/part_0001.tar" + tc.ext
			p := filepath.Join(a.Path, key)
			b := readFile(t, p)
			b[len(b)/2] ^= 0x5a
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}

			dest := filepath.Join(a.Dir, "restored-"+tc.codec)
			r := run(t, "", env(a, nil), "backup-fetch", dest, name)
			if r.Code == 0 {
				t.Fatalf("backup-fetch of a corrupt %s succeeded: %s", key, r)
			}
			if !strings.Contains(r.Stderr, key) {
				t.Errorf("backup-fetch error does not name %s:\n%s", key, r)
			}
			assertEmptyOrAbsent(t, dest)
			for _, f := range []string{"global/pg_control", "backup_label", "recovery.signal"} {
				if _, err := os.Lstat(filepath.Join(dest, f)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("failed restore left %s (err %v)", f, err)
				}
			}
		})
	}
}
