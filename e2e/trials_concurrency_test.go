package e2e

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// Concurrency trials (issue 18, part 2), against real servers, seeded and
// counted like the crash trials.

// Two backup-pushes of one cluster started together, the second after a
// random few milliseconds: both are listed and both restore, or one is
// refused with one line and the other is listed and restores.
func TestTrialsTwoBackupPushes(t *testing.T) {
	tr := newTrials(t)
	a := newArchive(t)
	c := trialCluster(t, a)
	iv := newInvariants(t, a)
	refusals := 0
	tr.run(t, func(t *testing.T, i int, rng *rand.Rand) {
		c.Pgbench(t, "-n", "-t", "200", "postgres")
		before := backupNames(t, a)
		p1 := startWalnut(t, "", partitioned(a, c), "backup-push", c.DataDir)
		time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
		p2 := startWalnut(t, "", partitioned(a, c), "backup-push", c.DataDir)
		<-p1.done
		<-p2.done
		var names []string
		failed := 0
		for _, p := range []*walnutProc{p1, p2} {
			out := p.output()
			if p.err != nil {
				failed++
				lines := strings.Split(strings.TrimSpace(out), "\n")
				t.Logf("refused (%v): %s", p.err, lines[len(lines)-1])
				continue
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			names = append(names, lines[len(lines)-1])
		}
		after := backupNames(t, a)
		switch {
		case failed == 0 && names[0] == names[1]:
			t.Fatalf("both backup-pushes succeeded under one name %s:\n%s\n%s", names[0], p1.output(), p2.output())
		case failed == 2:
			t.Fatalf("both backup-pushes failed:\n%s\n%s", p1.output(), p2.output())
		case failed == 1:
			refusals++
		}
		if len(after) != len(before)+len(names) {
			t.Fatalf("%d backup-pushes succeeded (%v), backups went from %v to %v", len(names), names, before, after)
		}
		for _, n := range names {
			if !slices.Contains(after, n) {
				t.Fatalf("backup %s printed by a successful backup-push is not listed: %v", n, after)
			}
		}
		iv.check(t, c)
	})
	t.Logf("%d of %d pairs had one refused; %d restores verified", refusals, tr.n, iv.restores)
}

// delete --confirm retain 1 while a backup-push runs, started at a random
// offset from 0 (before the backup has stored anything) to the backup's
// length: the running backup keeps its WAL and parts, finishes, and
// restores; the last one is started and has the source's rows.
func TestTrialsDeleteDuringBackupPush(t *testing.T) {
	tr := newTrials(t)
	a := newArchive(t)
	c := trialCluster(t, a)
	c.Exec(t, "CREATE TABLE noise AS SELECT md5(random()::text) || md5(random()::text) AS x FROM generate_series(1, 50000)")
	switchAndWaitArchived(t, c)
	iv := newInvariants(t, a)
	slow := func() []string { return env(a, c, "WALNUT_RATE_LIMIT=2MB", "WALNUT_PARTITION_SIZE=1048576") }
	mustRun(t, "", slow(), "backup-push", c.DataDir)
	_, full := timed(t, "", slow(), "backup-push", c.DataDir)
	t.Logf("one rate-limited backup-push takes %s", full)
	var last string
	tr.run(t, func(t *testing.T, i int, rng *rand.Rand) {
		c.Exec(t, "INSERT INTO noise SELECT md5(random()::text) FROM generate_series(1, 1000)")
		switchAndWaitArchived(t, c)
		d := time.Duration(rng.Int64N(int64(full)))
		if i == 0 {
			d = 0
		}
		p := startWalnut(t, "", slow(), "backup-push", c.DataDir)
		time.Sleep(d)
		// For the log: objects the running backup had stored (not listed yet).
		listed := backupNames(t, a)
		parts := 0
		for k := range listObjects(t, iv.s, "backups/") {
			if n := strings.TrimSuffix(strings.Split(strings.TrimPrefix(k, "backups/"), "/")[0], ".json"); !slices.Contains(listed, n) {
				parts++
			}
		}
		r := mustRun(t, "", env(a, nil), "delete", "--confirm", "retain", "1")
		select {
		case <-p.done:
		case <-time.After(5 * time.Minute):
			t.Fatal("the backup-push did not finish")
		}
		if p.err != nil {
			t.Fatalf("backup-push with a delete %s after its start failed: %v\n%s\ndelete:\n%s", d, p.err, p.output(), r.Stdout)
		}
		lines := strings.Split(strings.TrimSpace(p.output()), "\n")
		last = lines[len(lines)-1]
		if !slices.Contains(backupNames(t, a), last) {
			t.Fatalf("%s, running during the delete %s after its start, is not listed:\n%s", last, d, r.Stdout)
		}
		t.Logf("delete %s after the start, when the running backup had stored %d objects", d, parts)
		iv.check(t, c) // restores it, with its start..stop WAL
		mustRun(t, "", env(a, nil), "delete", "--confirm", "retain", "1")
	})
	want := c.QueryString(t, "SELECT count(*) FROM noise")
	switchAndWaitArchived(t, c)
	dest := filepath.Join(testpg.SharedTempDir(t), "restore")
	mustRun(t, "", env(a, nil), "backup-fetch", dest, last)
	if got := startRestored(t, a, dest).QueryString(t, "SELECT count(*) FROM noise"); got != want {
		t.Fatalf("%s restored to the end has %s rows, the source %s", last, got, want)
	}
}

// delete --confirm retain 1 run again and again while the server archives
// through wal-push with its pool under writes: every .done segment from
// the kept backup's start is in the archive, whole.
func TestTrialsDeleteDuringWALPush(t *testing.T) {
	tr := newTrials(t)
	a := newArchive(t)
	c := archivingCluster(t, a, map[string]string{
		"archive_command": walnutBin + " wal-push --pool-size 4 %p",
	})
	c.Pgbench(t, "-i", "-s", "1", "-q")
	switchAndWaitArchived(t, c)
	iv := newInvariants(t, a)
	tr.run(t, func(t *testing.T, i int, rng *rand.Rand) {
		mustRun(t, "", partitioned(a, c), "backup-push", c.DataDir)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 + rng.IntN(4) {
				c.Exec(t, "INSERT INTO pgbench_history SELECT 1, 1, 1, g, now() FROM generate_series(1, 2000) g")
				c.QueryString(t, "SELECT pg_switch_wal()::text")
			}
		}()
		for range 3 {
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			mustRun(t, "", env(a, nil), "delete", "--confirm", "retain", "1")
		}
		wg.Wait()
		switchAndWaitArchived(t, c)
		iv.check(t, c)
	})
}

// Two wal-fetches of one segment at once in a server's pg_wal, with
// prefetch, at random offsets from each other: both get the archive's
// bytes.
func TestTrialsTwoWALFetches(t *testing.T) {
	tr := newTrials(t)
	a := newArchive(t)
	c := trialCluster(t, a)
	first := c.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	for range 10 {
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
	handedOver := 0
	tr.run(t, func(t *testing.T, i int, rng *rand.Rand) {
		name := segment(rng.IntN(8))
		gap := time.Duration(rng.IntN(100)) * time.Millisecond
		var wg sync.WaitGroup
		results := make([]result, 2)
		for j, d := range []string{"pg_wal/A", "pg_wal/B"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if j == 1 {
					time.Sleep(gap)
				}
				results[j] = run(t, data, env(a, nil), "wal-fetch", "--prefetch", "4", name, d)
			}()
		}
		wg.Wait()
		for j, d := range []string{"A", "B"} {
			if results[j].Code != 0 {
				t.Fatalf("wal-fetch %s %s after another: %s", name, gap, results[j])
			}
			if !bytes.Equal(readFile(t, filepath.Join(walDir, d)), want(name)) {
				t.Fatalf("wal-fetch %s %s after another wrote other bytes", name, gap)
			}
			if strings.Contains(results[j].Stderr, "prefetched=true") {
				handedOver++
			}
			os.Remove(filepath.Join(walDir, d))
		}
		waitPrefetchQuiet(t, prefetchDir(data))
	})
	t.Logf("%d of %d fetches took their segment from the prefetch directory", handedOver, 2*tr.n)
}
