package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// trialCluster is the one cluster a command's trials share: pgbench at
// scale 1, archiving into a, and small partitions so a backup has several.
func trialCluster(t *testing.T, a *archive) *testpg.Cluster {
	t.Helper()
	c := archivingCluster(t, a, nil)
	c.Pgbench(t, "-i", "-s", "1", "-q")
	switchAndWaitArchived(t, c)
	return c
}

// partitioned is the environment of a backup-push with several partitions.
func partitioned(a *archive, c *testpg.Cluster) []string {
	return env(a, c, "WALNUT_PARTITION_SIZE=1048576")
}

// backup-push killed at a random moment: the archive keeps its invariants
// (an unfinished backup is never listed, LATEST stays the last finished
// one), and a re-run makes a backup that restores.
func TestTrialsBackupPush(t *testing.T) { trialsBackupPush(t, newArchive(t), newTrials(t)) }

// The same against MinIO: a multipart or single PUT cut by the kill is
// never visible.
func TestTrialsBackupPushMinIO(t *testing.T) {
	trialsBackupPush(t, newS3Archive(t, startMinIO(t), ""), newTrialsDefault(t, 2))
}

func trialsBackupPush(t *testing.T, a *archive, tr trials) {
	c := trialCluster(t, a)
	iv := newInvariants(t, a)
	mustRun(t, "", partitioned(a, c), "backup-push", c.DataDir) // the first waits for more WAL
	_, full := timed(t, "", partitioned(a, c), "backup-push", c.DataDir)
	t.Logf("one backup-push takes %s", full)
	killed := 0
	tr.run(t, func(t *testing.T, i int, rng *rand.Rand) {
		c.Pgbench(t, "-n", "-t", "200", "postgres")
		before := backupNames(t, a)
		d := drawDelay(rng, full)
		p := startWalnut(t, "", partitioned(a, c), "backup-push", c.DataDir)
		if p.killAfter(t, d) {
			killed++
			t.Logf("killed after %s", d)
			if got := backupNames(t, a); !slices.Equal(got, before) && len(got) != len(before)+1 {
				t.Fatalf("backups after a killed backup-push: %v, before %v", got, before)
			}
		} else {
			t.Logf("finished before %s: %s", d, p.output())
		}
		iv.check(t, c)
		mustRun(t, "", partitioned(a, c), "backup-push", c.DataDir)
		iv.check(t, c)
	})
	t.Logf("%d of %d backup-pushes killed mid-way; %d restores verified", killed, tr.n, iv.restores)
}

// backup-fetch killed at a random moment leaves DEST either whole or in a
// state the next backup-fetch refuses with one line, and never a directory
// with pg_control beside data files that differ from the backup's (the
// only kind a killed restore could leave that PostgreSQL would start).
func TestTrialsBackupFetch(t *testing.T) {
	tr := newTrials(t)
	a := newArchive(t)
	c := trialCluster(t, a)
	name := strings.TrimSpace(mustRun(t, "", partitioned(a, c), "backup-push", c.DataDir).Stdout)
	c.Stop(t)
	iv := newInvariants(t, a)
	dir := testpg.SharedTempDir(t)
	ref := filepath.Join(dir, "ref")
	_, full := timed(t, "", env(a, nil), "backup-fetch", ref, name)
	want := treeOf(t, ref)
	t.Logf("one backup-fetch takes %s", full)
	refused := 0
	tr.run(t, func(t *testing.T, i int, rng *rand.Rand) {
		dest := filepath.Join(dir, "dest")
		defer os.RemoveAll(dest)
		d := drawDelay(rng, full)
		p := startWalnut(t, "", env(a, nil), "backup-fetch", dest, name)
		if !p.killAfter(t, d) {
			t.Logf("finished before %s", d)
			return
		}
		got := treeOf(t, dest)
		if _, ok := got["global/pg_control"]; ok {
			// pg_control is written after every data file is in and synced.
			for path, sum := range want {
				if ignoredAfterControl(path) {
					continue
				}
				if got[path] != sum {
					t.Fatalf("killed after %s: DEST has global/pg_control but %s differs from the backup's", d, path)
				}
			}
		}
		iv.check(t, nil)
		r := run(t, "", env(a, nil), "backup-fetch", dest, name)
		switch {
		case len(got) == 0 && r.Code == 0:
			t.Logf("killed after %s before writing anything; the re-run restored", d)
		case r.Code == 0:
			t.Fatalf("killed after %s with %d files in DEST, the next backup-fetch restored over them: %s", d, len(got), r)
		case !strings.Contains(r.Stderr, dest+" is not empty") || strings.Count(strings.TrimSpace(r.Stderr), "\n") > 0:
			t.Fatalf("killed after %s: the next backup-fetch should refuse DEST in one line naming it: %s", d, r)
		default:
			refused++
			t.Logf("killed after %s with %d entries in DEST; refused: %s", d, len(got), strings.TrimSpace(r.Stderr))
		}
	})
	t.Logf("%d of %d killed restores refused by the next backup-fetch", refused, tr.n)
}

func fileDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ignoredAfterControl names what backup-fetch writes after pg_control.
func ignoredAfterControl(path string) bool {
	switch path {
	case "backup_manifest", "postgresql.auto.conf", "recovery.signal", "standby.signal", "backup_label", "tablespace_map", "global/pg_control":
		return true
	}
	return false
}

// treeOf maps every regular file under dir (relative path) to its size
// and a digest of its bytes; a missing dir is an empty map.
func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if !d.Type().IsRegular() {
			out[rel] = d.Type().String()
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = fileDigest(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// delete --confirm retain 1 and delete --confirm garbage killed at a
// random moment: listed backups still restore, and a re-run finishes the
// delete (retain 1 leaves one backup).
func TestTrialsDelete(t *testing.T) {
	tr := newTrials(t)
	a := newArchive(t)
	c := trialCluster(t, a)
	iv := newInvariants(t, a)
	mustRun(t, "", partitioned(a, c), "backup-push", c.DataDir)
	c.Pgbench(t, "-n", "-t", "200", "postgres")
	switchAndWaitArchived(t, c)
	mustRun(t, "", partitioned(a, c), "backup-push", c.DataDir)
	_, full := timed(t, "", env(a, nil), "delete", "--confirm", "retain", "1")
	t.Logf("one delete retain 1 takes %s", full)
	killed := 0
	tr.run(t, func(t *testing.T, i int, rng *rand.Rand) {
		// Two more backups with WAL between them, and the leftovers of a
		// backup-push killed mid-way: retain 1 has a backup and WAL to
		// delete, garbage the killed push's parts (--grace 0s) and WAL.
		for range 2 {
			c.Pgbench(t, "-n", "-t", "200", "postgres")
			switchAndWaitArchived(t, c)
			mustRun(t, "", partitioned(a, c), "backup-push", c.DataDir)
		}
		args := []string{"delete", "--confirm", "retain", "1"}
		if i%2 == 1 {
			p := startWalnut(t, "", partitioned(a, c), "backup-push", c.DataDir)
			p.killAfter(t, drawDelay(rng, time.Second))
			args = []string{"delete", "--confirm", "garbage", "--grace", "0s"}
		}
		d := drawDelay(rng, full)
		p := startWalnut(t, "", env(a, nil), args...)
		if p.killAfter(t, d) {
			killed++
			t.Logf("%s killed after %s", strings.Join(args, " "), d)
		} else {
			t.Logf("%s finished before %s", strings.Join(args, " "), d)
		}
		iv.check(t, c)
		mustRun(t, "", env(a, nil), args...)
		iv.check(t, c)
		if args[2] == "retain" {
			if got := backupNames(t, a); len(got) != 1 {
				t.Fatalf("after a re-run of retain 1: %v", got)
			}
		} else {
			listed := backupNames(t, a)
			for k := range listObjects(t, iv.s, "backups/") {
				n := strings.TrimSuffix(strings.Split(strings.TrimPrefix(k, "backups/"), "/")[0], ".json")
				if !slices.Contains(listed, n) {
					t.Fatalf("after a re-run of garbage --grace 0s, %s of an unlisted backup is left (listed: %v)", k, listed)
				}
			}
		}
	})
	t.Logf("%d of %d deletes killed mid-way", killed, tr.n)
}

// backup-mark (and --impermanent) killed at a random moment: the sentinel
// is whole, the backup still listed and restorable; a re-run marks it.
func TestTrialsBackupMark(t *testing.T) {
	tr := newTrials(t)
	a := newArchive(t)
	c := trialCluster(t, a)
	iv := newInvariants(t, a)
	name := strings.TrimSpace(mustRun(t, "", partitioned(a, c), "backup-push", c.DataDir).Stdout)
	_, full := timed(t, "", env(a, nil), "backup-mark", name)
	mustRun(t, "", env(a, nil), "backup-mark", "--impermanent", name)
	killed := 0
	tr.run(t, func(t *testing.T, i int, rng *rand.Rand) {
		args := []string{"backup-mark", name}
		if i%2 == 1 {
			args = []string{"backup-mark", "--impermanent", name}
		}
		d := drawDelay(rng, full)
		if startWalnut(t, "", env(a, nil), args...).killAfter(t, d) {
			killed++
		}
		iv.check(t, nil)
		mustRun(t, "", env(a, nil), args...)
		iv.check(t, nil)
		iv.restoreLatest(t) // its sentinel was rewritten
		list := sentinels(t, a)
		if len(list) != 1 || list[0].Permanent != (i%2 == 0) {
			t.Fatalf("after %s: %+v", strings.Join(args, " "), list)
		}
	})
	t.Logf("%d of %d backup-marks killed mid-way (one takes %s)", killed, tr.n, full)
}
