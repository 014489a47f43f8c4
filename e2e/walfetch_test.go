package e2e

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

func assertAbsent(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists after a failed wal-fetch (err %v)", p, err)
	}
}

func TestWALFetchMissingAndPresent(t *testing.T) {
	a := newArchive(t)
	c := testpg.New(t, testpg.Options{})
	seg := completeSegment(t, c)
	name := filepath.Base(seg)
	mustRun(t, "", env(a, nil), "wal-push", seg)
	hist := writeShared(t, "00000002.history", []byte("1\t0/3000108\tno recovery target specified\n"))
	mustRun(t, "", env(a, nil), "wal-push", hist)

	work := testpg.SharedTempDir(t)
	missing := filepath.Join(work, "missing")
	r := run(t, work, env(a, nil), "wal-fetch", "0000000100000000000000F9", missing)
	if r.Code != 66 {
		t.Fatalf("wal-fetch of a name not in the archive: want exit 66, got %s", r)
	}
	assertAbsent(t, missing)
	r = run(t, work, env(a, nil), "wal-fetch", "00000009.history", missing)
	if r.Code != 66 {
		t.Fatalf("wal-fetch of a history file not in the archive: want exit 66, got %s", r)
	}
	assertAbsent(t, missing)

	for _, src := range []string{seg, hist} {
		dest := filepath.Join(work, "got-"+filepath.Base(src))
		mustRun(t, work, env(a, nil), "wal-fetch", filepath.Base(src), dest)
		if !bytes.Equal(readFile(t, dest), readFile(t, src)) {
			t.Errorf("wal-fetch %s wrote other bytes than were pushed", filepath.Base(src))
		}
	}
	// PostgreSQL passes a DEST relative to the data directory it runs in.
	mustRun(t, work, env(a, nil), "wal-fetch", name, "RECOVERYXLOG")
	if !bytes.Equal(readFile(t, filepath.Join(work, "RECOVERYXLOG")), readFile(t, seg)) {
		t.Errorf("wal-fetch %s to a relative DEST wrote other bytes", name)
	}
}

// lockWALDir makes the archive's wal/ unreadable to the server user, so the
// store fails instead of answering "not found".
func lockWALDir(t *testing.T, a *archive) {
	t.Helper()
	dir := filepath.Join(a.Path, "wal")
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, fi.Mode().Perm()) })
}

func TestWALFetchStoreFailure(t *testing.T) {
	a := newArchive(t)
	hist := writeShared(t, "00000002.history", []byte("1\t0/3000108\tno recovery target specified\n"))
	mustRun(t, "", env(a, nil), "wal-push", hist)
	lockWALDir(t, a)

	recovering := testpg.SharedTempDir(t)
	dest := filepath.Join(recovering, "RECOVERYHISTORY")
	r := run(t, recovering, env(a, nil), "wal-fetch", "00000002.history", dest)
	if r.Code != 200 {
		t.Errorf("wal-fetch with a failing store during archive recovery: want exit 200 (>125), got %s", r)
	}
	assertAbsent(t, dest)
	r = run(t, recovering, env(a, nil), "wal-fetch", "000000010000000000000001", dest)
	if r.Code != 200 {
		t.Errorf("wal-fetch of a segment with a failing store during archive recovery: want exit 200, got %s", r)
	}
	assertAbsent(t, dest)

	standby := testpg.SharedTempDir(t)
	if err := os.WriteFile(filepath.Join(standby, "standby.signal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(standby); err != nil {
		t.Fatal(err)
	}
	dest = filepath.Join(standby, "RECOVERYHISTORY")
	r = run(t, standby, env(a, nil), "wal-fetch", "00000002.history", dest)
	if r.Code != 1 {
		t.Errorf("wal-fetch with a failing store in standby mode: want exit 1, got %s", r)
	}
	assertAbsent(t, dest)
}

// A restore whose archive fails must stop, not end recovery early and
// promote at the wrong point.
func TestPITRStopsWhenArchiveFails(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Pgbench(t, "-i", "-s", "1", "-q")
	mustRun(t, "", env(a, src), "backup-push", src.DataDir)
	src.Exec(t, "CREATE TABLE after_backup AS SELECT 1 AS x")
	switchAndWaitArchived(t, src)
	src.Stop(t)

	dest := filepath.Join(a.Dir, "restored")
	mustRun(t, "", env(a, nil), "backup-fetch", dest, "LATEST")
	if _, err := os.Stat(filepath.Join(dest, "recovery.signal")); err != nil {
		t.Fatalf("backup-fetch wrote no recovery.signal: %v", err)
	}
	lockWALDir(t, a)

	restored, err := testpg.StartErr(t, dest, restoreOpts(a))
	if err == nil {
		t.Fatalf("restored server started although its archive fails\n%s", restored.LogTail(30))
	}
	restored.WaitStopped(t, time.Minute)
	if _, err := os.Stat(filepath.Join(dest, "recovery.signal")); err != nil {
		t.Errorf("recovery.signal is gone: the server ended recovery: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dest, "pg_wal", "00000002.history")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pg_wal/00000002.history exists (err %v): the server promoted", err)
	}
	if log := restored.LogTail(60); !strings.Contains(log, "exit code 200") {
		t.Errorf("server log does not show wal-fetch's exit code 200:\n%s", log)
	}
}

// A restore_command with a configuration mistake (an envdir that is not
// there or that the server cannot read, a flag misspelt) must not exit
// with a code of 125 or less, which PostgreSQL reads as "not in the
// archive" and answers by ending recovery early. Like a failing store, it
// exits 200 during archive recovery and 1 in standby mode.
func TestWALFetchConfigErrors(t *testing.T) {
	a := newArchive(t)
	hist := writeShared(t, "00000002.history", []byte("1\t0/3000108\tno recovery target specified\n"))
	mustRun(t, "", env(a, nil), "wal-push", hist)

	envdir := filepath.Join(testpg.SharedTempDir(t), "env")
	if err := os.Mkdir(envdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(envdir, "WALNUT_PREFIX"), []byte(a.Prefix+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Readable by its owner only, and owned by someone else than the
	// server user: root when the tests run as root, else nobody can read
	// a mode-0 directory.
	unreadable := filepath.Join(testpg.SharedTempDir(t), "rootonly")
	if err := os.Mkdir(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(unreadable, 0o700) })

	recovering := testpg.SharedTempDir(t)
	standby := testpg.SharedTempDir(t)
	if err := os.WriteFile(filepath.Join(standby, "standby.signal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(standby); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		env  []string
		args []string
	}{
		{"envdir missing", nil, []string{"--envdir", envdir + "v", "wal-fetch", "00000002.history", "DEST"}},
		{"envdir unreadable", nil, []string{"--envdir", unreadable, "wal-fetch", "00000002.history", "DEST"}},
		{"env file missing", nil, []string{"--env-file", envdir + "/nothing.env", "wal-fetch", "00000002.history", "DEST"}},
		{"unknown global flag", nil, []string{"--envdri", envdir, "wal-fetch", "00000002.history", "DEST"}},
		{"unknown wal-fetch flag", nil, []string{"--envdir", envdir, "wal-fetch", "--prefech", "0", "00000002.history", "DEST"}},
		{"bad flag value", nil, []string{"--envdir", envdir, "wal-fetch", "--prefetch", "many", "00000002.history", "DEST"}},
		{"bad log format", nil, []string{"--envdir", envdir, "--log-format", "xml", "wal-fetch", "00000002.history", "DEST"}},
		{"bad log level", []string{"WALNUT_LOG_LEVEL=loud"}, []string{"--envdir", envdir, "wal-fetch", "00000002.history", "DEST"}},
		{"no prefix", nil, []string{"wal-fetch", "00000002.history", "DEST"}},
		{"missing DEST", nil, []string{"--envdir", envdir, "wal-fetch", "00000002.history"}},
		{"wal-prefetch envdir missing", nil, []string{"--envdir", envdir + "v", "wal-prefetch", "000000010000000000000001", "DIR"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []struct {
				dir  string
				want int
			}{{recovering, 200}, {standby, 1}} {
				r := run(t, mode.dir, tc.env, tc.args...)
				if r.Code != mode.want {
					t.Errorf("in %s: want exit %d, got %s", filepath.Base(mode.dir), mode.want, r)
				}
				if msg := strings.TrimSpace(r.Stderr); strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "walnut: ") {
					t.Errorf("want one line on stderr, got:\n%s", r.Stderr)
				}
				assertAbsent(t, filepath.Join(mode.dir, "DEST"))
			}
		})
	}

	// The same mistakes elsewhere remain usage errors.
	if r := run(t, recovering, nil, "--envdir", envdir+"v", "backup-list"); r.Code != 2 {
		t.Errorf("backup-list with a missing envdir: want exit 2, got %s", r)
	}
	// And the right configuration fetches.
	mustRun(t, recovering, nil, "--envdir", envdir, "wal-fetch", "00000002.history", "DEST")
}
