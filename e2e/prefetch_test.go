package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/pgcontrol"
)

// walSource is an archive holding a base backup and about 20 segments of
// WAL after it, and what a restore to its end must show.
type walSource struct {
	a        *archive
	backup   string // backup name
	first    string // the segment the backup starts in
	digest   string // tableDigest at the end
	endLSN   string // the source's WAL position at the end
	segments int
}

func newWALSource(t *testing.T) walSource {
	t.Helper()
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Pgbench(t, "-i", "-s", "2", "-q")
	name := strings.TrimSpace(mustRun(t, "", env(a, src), "backup-push", src.DataDir).Stdout)
	src.Exec(t, "CREATE TABLE filler AS SELECT g, md5(g::text) AS v FROM generate_series(1, 2500000) g")
	src.Pgbench(t, "-n", "-c", "2", "-t", "1000", "postgres")
	s := walSource{a: a, backup: name, first: name[len("base_") : len("base_")+24]}
	s.digest = src.QueryString(t, tableDigest)
	s.endLSN = src.QueryString(t, "SELECT pg_current_wal_lsn()::text")
	switchAndWaitArchived(t, src)
	m, _ := filepath.Glob(filepath.Join(a.Path, "wal", "00000001*"))
	s.segments = len(m)
	if s.segments < 16 {
		t.Fatalf("only %d segments archived; the test wants 16 or more", s.segments)
	}
	src.Stop(t)
	return s
}

// restoreWithPrefetch restores the backup, replays the whole archive with
// WALNUT_PREFETCH=n and returns the promoted server.
func (s walSource) restoreWithPrefetch(t *testing.T, dest string, n int) *testpg.Cluster {
	t.Helper()
	if _, err := os.Stat(dest); err != nil {
		mustRun(t, "", env(s.a, nil), "backup-fetch", dest, s.backup)
	}
	opts := restoreOpts(s.a)
	opts.Env = append(opts.Env, fmt.Sprintf("WALNUT_PREFETCH=%d", n))
	opts.Conf = map[string]string{"archive_mode": "off"}
	c := testpg.Start(t, dest, opts)
	c.WaitReady(t, 5*time.Minute)
	return c
}

// checkRestored compares a restore with the source: data, and replay
// reaching the source's last position.
func (s walSource) checkRestored(t *testing.T, c *testpg.Cluster) string {
	t.Helper()
	if got := c.QueryString(t, tableDigest); got != s.digest {
		t.Fatalf("restored data digest %s, want %s", got, s.digest)
	}
	lsn := c.QueryString(t, "SELECT pg_last_wal_replay_lsn()::text")
	if ok := c.QueryString(t, "SELECT ('"+lsn+"'::pg_lsn >= '"+s.endLSN+"'::pg_lsn)::text"); ok != "true" {
		t.Fatalf("replay ended at %s, before the source's %s", lsn, s.endLSN)
	}
	return lsn
}

// prefetchedFetches counts wal-fetch's log lines for segments handed over
// from the prefetch directory.
func prefetchedFetches(t *testing.T, c *testpg.Cluster) int {
	t.Helper()
	b, err := os.ReadFile(c.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "msg=fetched") && strings.Contains(line, "prefetched=true") {
			n++
		}
	}
	return n
}

// waitPrefetchQuiet waits until no prefetch is writing in dir: no lock or
// temporary file left. Prefetches end by themselves; a test must not
// remove the directory under one.
func waitPrefetchQuiet(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		busy, _ := filepath.Glob(filepath.Join(dir, ".0*"))
		if len(busy) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("prefetch still busy after a minute: %v", busy)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func prefetchDir(dataDir string) string {
	return filepath.Join(dataDir, "pg_wal", ".walnut", "prefetch")
}

// A restore with prefetch replays to the same end, with the same data, as
// one without; and it took segments from the prefetch directory.
func TestRestoreWithPrefetchSameAsWithout(t *testing.T) {
	s := newWALSource(t)

	plain := s.restoreWithPrefetch(t, filepath.Join(s.a.Dir, "plain"), 0)
	plainLSN := s.checkRestored(t, plain)
	if _, err := os.Stat(filepath.Join(plain.DataDir, "pg_wal", ".walnut")); err == nil {
		t.Errorf("WALNUT_PREFETCH=0 made a prefetch directory")
	}
	if n := prefetchedFetches(t, plain); n != 0 {
		t.Errorf("WALNUT_PREFETCH=0: %d segments handed over from prefetch", n)
	}
	plain.Stop(t)

	pre := s.restoreWithPrefetch(t, filepath.Join(s.a.Dir, "prefetch"), 8)
	if lsn := s.checkRestored(t, pre); lsn != plainLSN {
		t.Fatalf("with prefetch replay ended at %s, without at %s", lsn, plainLSN)
	}
	n := prefetchedFetches(t, pre)
	if n < s.segments/2 {
		t.Errorf("only %d of %d segments came from the prefetch directory\n%s", n, s.segments, pre.LogTail(30))
	}
	waitPrefetchQuiet(t, prefetchDir(pre.DataDir))
	t.Logf("%d segments archived, %d handed over from prefetch", s.segments, n)
}

// A prefetch killed midway leaves only temporary files in its own
// directory, which PostgreSQL never reads and no wal-fetch hands over;
// two wal-fetches of one segment at once both get it whole; and the
// restore then completes with the source's data.
func TestKilledPrefetch(t *testing.T) {
	s := newWALSource(t)
	dest := filepath.Join(s.a.Dir, "restored")
	mustRun(t, "", env(s.a, nil), "backup-fetch", dest, s.backup)
	dir := prefetchDir(dest)
	walDir := filepath.Join(dest, "pg_wal")

	// The reference bytes: fetched outside pg_wal, so without prefetch.
	ref := testpg.SharedTempDir(t)
	want := func(name string) []byte {
		p := filepath.Join(ref, name)
		if _, err := os.Stat(p); err != nil {
			mustRun(t, "", env(s.a, nil), "wal-fetch", name, p)
		}
		return readFile(t, p)
	}

	// Started here rather than by wal-fetch so the test can kill it: as
	// this test's user, the files handed to the server user afterwards.
	var left []string
	for attempt := 0; attempt < 5 && len(left) == 0; attempt++ {
		os.RemoveAll(dir)
		cmd := exec.Command(walnutBin, "wal-prefetch", "--count", "16", "--segment-size", "16777216", s.first, dir)
		cmd.Env = append(os.Environ(), "WALNUT_PREFIX="+s.a.Prefix)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if m, _ := filepath.Glob(filepath.Join(dir, ".*.walnut-tmp-*")); len(m) > 0 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		cmd.Process.Kill()
		cmd.Wait()
		left, _ = filepath.Glob(filepath.Join(dir, ".*.walnut-tmp-*"))
	}
	if len(left) == 0 {
		t.Fatal("could not kill a prefetch while it was writing, in 5 attempts")
	}
	// And one more, truncated, for the very next segment PostgreSQL asks for.
	if err := os.WriteFile(filepath.Join(dir, "."+s.first+".walnut-tmp-1"), want(s.first)[:1<<20], 0o600); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	whole := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		whole++
		if !bytes.Equal(readFile(t, filepath.Join(dir, e.Name())), want(e.Name())) {
			t.Fatalf("killed prefetch left %s under its final name with other bytes than the archive's", e.Name())
		}
	}
	top, err := os.ReadDir(walDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range top {
		if e.Name() != "archive_status" && e.Name() != ".walnut" {
			t.Fatalf("pg_wal/%s exists after a killed prefetch", e.Name())
		}
	}
	t.Logf("killed prefetch left %d temporary files and %d whole segments", len(left), whole)
	if err := testpg.ChownToServer(dest); err != nil {
		t.Fatal(err)
	}

	// Two wal-fetches at once for the same segments, as PostgreSQL's
	// restore_command would run them (in the data directory, DEST in
	// pg_wal): the first not prefetched, the next ones prefetched by the
	// first pair's background prefetch.
	_, firstNo, err := pgcontrol.ParseWALFileName(s.first, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	handedOver := 0
	for i := range 4 {
		name := pgcontrol.WALFileName(1, firstNo+uint64(i), 16<<20)
		if i > 0 {
			// The first pair's prefetches also swept the killed one's files.
			waitPrefetchQuiet(t, dir)
		}
		var wg sync.WaitGroup
		results := make([]result, 2)
		for j, d := range []string{"pg_wal/A", "pg_wal/B"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[j] = run(t, dest, env(s.a, nil), "wal-fetch", name, d)
			}()
		}
		wg.Wait()
		for j, d := range []string{"A", "B"} {
			if results[j].Code != 0 {
				t.Fatalf("wal-fetch %s at once with another: %s", name, results[j])
			}
			if !bytes.Equal(readFile(t, filepath.Join(walDir, d)), want(name)) {
				t.Fatalf("wal-fetch %s at once with another wrote other bytes", name)
			}
			if strings.Contains(results[j].Stderr, "prefetched=true") {
				handedOver++
			}
			os.Remove(filepath.Join(walDir, d))
		}
	}
	if handedOver == 0 {
		t.Error("no wal-fetch at once with another took its segment from the prefetch directory")
	}
	waitPrefetchQuiet(t, dir)

	c := s.restoreWithPrefetch(t, dest, 8)
	s.checkRestored(t, c)
	waitPrefetchQuiet(t, dir)
	if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) != 0 {
		t.Errorf("left in the prefetch directory after the restore: %v", m)
	}
}

// Against MinIO, with every setting only in an envdir as an operator
// would keep them: a pooled archive_command stores each file once, and
// the restore's background prefetch, started by wal-fetch with the same
// --envdir, hands segments over.
func TestPoolAndPrefetchAgainstMinIO(t *testing.T) {
	m := startMinIO(t)
	a := newS3Archive(t, m, "")
	src := archivingCluster(t, a, map[string]string{
		"archive_command": walnutBin + " --envdir " + a.Envdir + " --log-format json wal-push --pool-size 8 %p",
	})
	src.Pgbench(t, "-i", "-s", "2", "-q")
	mustRun(t, "", src.Env(), "--envdir", a.Envdir, "backup-push", src.DataDir)
	src.Exec(t, "CREATE TABLE filler AS SELECT g, md5(g::text) AS v FROM generate_series(1, 1500000) g")
	src.Pgbench(t, "-n", "-c", "2", "-t", "500", "postgres")
	want := src.QueryString(t, tableDigest)
	switchAndWaitArchived(t, src)
	waitNoBacklog(t, src)

	puts, skipped := walnutPushes(t, src)
	stored := map[string]int{}
	for _, k := range s3Keys(t, m, a, "wal/") {
		name, _, _ := strings.Cut(strings.TrimPrefix(k, "wal/"), "-")
		stored[name]++
	}
	if len(stored) < 8 {
		t.Fatalf("only %d files archived: %v", len(stored), stored)
	}
	for name, n := range stored {
		if n != 1 || puts[name] != 1 {
			t.Errorf("%s: %d objects, stored %d times; want one of each", name, n, puts[name])
		}
	}
	if skipped == 0 {
		t.Error("no archive_command call was answered by a file stored ahead")
	}

	dest := filepath.Join(a.Dir, "restored")
	mustRun(t, "", nil, "--envdir", a.Envdir, "backup-fetch", dest, "LATEST")
	restored := testpg.Start(t, dest, testpg.Options{Conf: map[string]string{"archive_mode": "off"}})
	restored.WaitReady(t, 5*time.Minute)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("restored data digest %s, want %s", got, want)
	}
	if n := prefetchedFetches(t, restored); n == 0 {
		t.Errorf("no segment came from the prefetch directory\n%s", restored.LogTail(30))
	}
	waitPrefetchQuiet(t, prefetchDir(dest))
}
