package e2e

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/pgcontrol"
)

// walnutPIDs returns the walnut processes of this test binary's build
// whose working directory is dir or whose arguments name something under
// it: the archiver's wal-push (run in the data directory) or a detached
// wal-prefetch (given the absolute prefetch directory).
func walnutPIDs(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		proc := filepath.Join("/proc", e.Name())
		if exe, err := os.Readlink(filepath.Join(proc, "exe")); err != nil || exe != walnutBin {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join(proc, "cwd"))
		cmdline, _ := os.ReadFile(filepath.Join(proc, "cmdline"))
		if cwd == dir || bytes.Contains(cmdline, []byte(dir+"/")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// wal-push with its pool, as the archive_command of a running server
// under writes: walnut processes the archiver started are killed at
// random moments (the archiver dies with them and the postmaster starts
// another, which retries). After the kills every .done file is in the
// archive with its digest, no object is partial, and archiving catches up.
func TestTrialsWALPushPool(t *testing.T) { trialsWALPushPool(t, newArchive(t), newTrials(t)) }

// The same against MinIO, the archive_command reading its settings from
// an envdir as an operator would set it up.
func TestTrialsWALPushPoolMinIO(t *testing.T) {
	trialsWALPushPool(t, newS3Archive(t, startMinIO(t), ""), newTrialsDefault(t, 2))
}

func trialsWALPushPool(t *testing.T, a *archive, tr trials) {
	walnut := walnutBin
	if a.Envdir != "" {
		walnut += " --envdir " + a.Envdir
	}
	c := archivingCluster(t, a, map[string]string{"archive_command": walnut + " wal-push --pool-size 4 %p"})
	c.Pgbench(t, "-i", "-s", "1", "-q")
	switchAndWaitArchived(t, c)
	iv := newInvariants(t, a)
	kills := 0
	tr.run(t, func(t *testing.T, i int, rng *rand.Rand) {
		// A few segments to archive at once, so the pool has work.
		var switched []string
		for range 2 + rng.IntN(4) {
			c.Exec(t, "INSERT INTO pgbench_history SELECT 1, 1, 1, g, now() FROM generate_series(1, 2000) g")
			switched = append(switched, c.QueryString(t, "SELECT pg_walfile_name(pg_switch_wal())"))
		}
		t.Logf("switched %v", switched)
		end := time.Now().Add(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
		n := 0
		for time.Now().Before(end) {
			// A wal-push of a nearly empty segment lives some 100 ms (less
			// on MinIO since it encodes once): look often, or a trial can
			// miss every one of them.
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
			for _, pid := range walnutPIDs(c.DataDir) {
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					n++
				}
			}
		}
		kills += n
		t.Logf("killed %d wal-push processes", n)
		iv.check(t, c)
		switchAndWaitArchived(t, c)
		iv.check(t, c)
	})
	t.Logf("%d wal-push processes killed in %d trials", kills, tr.n)
	if a.Path != "" {
		temps, _ := filepath.Glob(filepath.Join(a.Path, "wal", ".tmp-*"))
		t.Logf("%d temp files of killed Puts left in the archive's wal/", len(temps))
	}
	if kills == 0 {
		t.Error("no trial killed a wal-push")
	}
}

// wal-fetch with prefetch killed at a random moment, with its detached
// prefetch: nothing under a segment's final name holds other bytes than
// the archive's, DEST is whole or absent, and the next wal-fetch (after
// the leftovers have aged past the sweep's minute) hands over the right
// bytes and sweeps the temp files.
func TestTrialsWALFetchPrefetch(t *testing.T) {
	tr := newTrials(t)
	a := newArchive(t)
	c := trialCluster(t, a)
	first := c.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	for range 12 {
		c.Exec(t, "INSERT INTO pgbench_history SELECT 1, 1, 1, g, now() FROM generate_series(1, 2000) g")
		c.QueryString(t, "SELECT pg_switch_wal()::text")
	}
	switchAndWaitArchived(t, c)
	c.Stop(t)
	segment := segmentsFrom(t, first)
	ref := testpg.SharedTempDir(t)
	want := func(name string) []byte {
		p := filepath.Join(ref, name)
		if _, err := os.Stat(p); err != nil {
			mustRun(t, "", env(a, nil), "wal-fetch", "--prefetch", "0", name, p)
		}
		return readFile(t, p)
	}
	data := standInDataDir(t)
	walDir := filepath.Join(data, "pg_wal")
	pre := prefetchDir(data)
	fetch := func(name string) []string {
		return []string{"wal-fetch", "--prefetch", "4", name, "pg_wal/RECOVERYXLOG"}
	}
	_, full := timed(t, data, env(a, nil), fetch(segment(0))...)
	waitPrefetchQuiet(t, pre)
	os.RemoveAll(pre)
	os.Remove(filepath.Join(walDir, "RECOVERYXLOG"))
	t.Logf("one wal-fetch takes %s", full)
	swept := 0
	tr.run(t, func(t *testing.T, i int, rng *rand.Rand) {
		name := segment(rng.IntN(8))
		dest := filepath.Join(walDir, "RECOVERYXLOG")
		os.Remove(dest)
		// Kill wal-fetch, or its prefetch some time after it started.
		d := drawDelay(rng, full+full*time.Duration(rng.IntN(3)))
		p := startWalnut(t, data, env(a, nil), fetch(name)...)
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		for _, pid := range walnutPIDs(data) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		<-p.done
		if b, err := os.ReadFile(dest); err == nil && !bytes.Equal(b, want(name)) {
			t.Fatalf("killed after %s: DEST holds %d bytes that are not %s", d, len(b), name)
		}
		entries, _ := os.ReadDir(pre)
		var temps []string
		for _, e := range entries {
			if pgcontrol.IsWALFileName(e.Name()) {
				if !bytes.Equal(readFile(t, filepath.Join(pre, e.Name())), want(e.Name())) {
					t.Fatalf("killed after %s: prefetched %s holds other bytes than the archive's", d, e.Name())
				}
			}
			if strings.Contains(e.Name(), ".walnut-tmp-") {
				temps = append(temps, filepath.Join(pre, e.Name()))
			}
		}
		top, _ := filepath.Glob(filepath.Join(walDir, ".*.walnut-tmp-*"))
		temps = append(temps, top...)
		t.Logf("killed after %s: %d temp files left", d, len(temps))
		// Age them past the sweep's minute, as if the next fetch came later.
		old := time.Now().Add(-2 * time.Minute)
		for _, p := range temps {
			os.Chtimes(p, old, old)
		}
		os.Remove(dest)
		next := segment(8 + rng.IntN(2))
		mustRun(t, data, env(a, nil), fetch(next)...)
		if !bytes.Equal(readFile(t, dest), want(next)) {
			t.Fatalf("the next wal-fetch of %s wrote other bytes", next)
		}
		waitPrefetchQuiet(t, pre)
		for _, p := range temps {
			if _, err := os.Stat(p); err == nil {
				t.Fatalf("%s, left by the killed wal-fetch or prefetch, survived the next wal-fetch", p)
			}
			swept++
		}
		// Start the next trial with an empty prefetch directory, as a
		// restore whose server has moved on.
		os.RemoveAll(pre)
	})
	t.Logf("%d temp files of killed fetches swept by the next run", swept)
}

// segmentsFrom returns the name of the k-th segment after first on
// timeline 1.
func segmentsFrom(t *testing.T, first string) func(k int) string {
	t.Helper()
	_, firstNo, err := pgcontrol.ParseWALFileName(first, pgcontrol.DefaultWALSegmentSize)
	if err != nil {
		t.Fatal(err)
	}
	return func(k int) string {
		return pgcontrol.WALFileName(1, firstNo+uint64(k), pgcontrol.DefaultWALSegmentSize)
	}
}

// standInDataDir is a directory for wal-fetch to run in as a server's
// restore_command does: wal-fetch prefetches when DEST is in a pg_wal
// holding archive_status.
func standInDataDir(t *testing.T) string {
	t.Helper()
	data := filepath.Join(testpg.SharedTempDir(t), "data")
	if err := os.MkdirAll(filepath.Join(data, "pg_wal", "archive_status"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(data); err != nil {
		t.Fatal(err)
	}
	return data
}
