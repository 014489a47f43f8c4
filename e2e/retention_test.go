package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	core "github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/retention"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/all"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

// retentionArchives are the kinds of archive the retention tests run
// against. The tests reach objects only through the prefix (walnut or an
// in-process store opened from it), so another store is one more line.
var retentionArchives = []struct {
	name string
	new  func(t *testing.T) *archive
}{
	{"file", newArchive},
	{"minio", func(t *testing.T) *archive { return newS3Archive(t, startMinIO(t), "") }},
}

func forEachArchive(t *testing.T, test func(t *testing.T, a *archive)) {
	for _, k := range retentionArchives {
		t.Run(k.name, func(t *testing.T) { test(t, k.new(t)) })
	}
}

// openArchive opens a's store in this process, as walnut would.
func openArchive(t *testing.T, a *archive) storage.Store {
	t.Helper()
	vars := map[string]string{}
	for _, kv := range env(a, nil) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	s, err := all.Open(t.Context(), a.Prefix, func(k string) string { return vars[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// listObjects returns every object under prefix in a's store, by key.
func listObjects(t *testing.T, s storage.Store, prefix string) map[string]storage.ObjectInfo {
	t.Helper()
	out := map[string]storage.ObjectInfo{}
	if err := s.List(t.Context(), prefix, func(oi storage.ObjectInfo) error {
		out[oi.Key] = oi
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// walPosition reads a WAL key's timeline and segment number; ok is false
// for history files.
func walPosition(t *testing.T, key string) (tli uint32, seg uint64, ok bool) {
	t.Helper()
	name, _, _ := strings.Cut(strings.TrimPrefix(key, "wal/"), "-")
	if pgcontrol.IsHistoryFileName(name) {
		return 0, 0, false
	}
	tli, seg, err := pgcontrol.ParseWALFileName(name[:24], pgcontrol.DefaultWALSegmentSize)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return tli, seg, true
}

func segmentNumber(t *testing.T, name string) uint64 {
	t.Helper()
	_, seg, err := pgcontrol.ParseWALFileName(name, pgcontrol.DefaultWALSegmentSize)
	if err != nil {
		t.Fatal(err)
	}
	return seg
}

// sentinels reads backup-list --json.
func sentinels(t *testing.T, a *archive) []core.Sentinel {
	t.Helper()
	out := mustRun(t, "", env(a, nil), "backup-list", "--json").Stdout
	var list []core.Sentinel
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("backup-list --json: %v\n%s", err, out)
	}
	return list
}

// pushBackupsWithWALBetween takes n backups of src, with pgbench writes
// and archived segment switches before each, and returns their names.
func pushBackupsWithWALBetween(t *testing.T, a *archive, src *testpg.Cluster, n int) []string {
	t.Helper()
	var names []string
	for range n {
		src.Pgbench(t, "-n", "-t", "300", "postgres")
		switchAndWaitArchived(t, src)
		names = append(names, strings.TrimSpace(mustRun(t, "", env(a, src), "backup-push", src.DataDir).Stdout))
	}
	return names
}

// checkListedWhole fails unless every listed backup has every part its
// sentinel names and the WAL from its start to its stop segment.
func checkListedWhole(t *testing.T, a *archive, s storage.Store) []string {
	t.Helper()
	var names []string
	for _, sn := range sentinels(t, a) {
		names = append(names, sn.Name)
		parts := listObjects(t, s, "backups/"+sn.Name+"/")
		for i := 1; i <= sn.Partitions; i++ {
			if len(listObjects(t, s, fmt.Sprintf("backups/%s/part_%04d.tar", sn.Name, i))) != 1 {
				t.Fatalf("listed backup %s lacks partition %d", sn.Name, i)
			}
		}
		for _, k := range []string{sn.ManifestKey, sn.ControlKey, sn.PGManifestKey} {
			if _, ok := parts[k]; !ok {
				t.Fatalf("listed backup %s lacks %s", sn.Name, k)
			}
		}
		for seg := segmentNumber(t, sn.StartSegment); seg <= segmentNumber(t, sn.StopSegment); seg++ {
			name := pgcontrol.WALFileName(sn.Timeline, seg, sn.WALSegmentSize)
			if len(listObjects(t, s, "wal/"+name+"-")) != 1 {
				t.Fatalf("listed backup %s lacks WAL segment %s", sn.Name, name)
			}
		}
	}
	return names
}

// Four backups with WAL between them: a dry run changes nothing; retain 2
// leaves exactly the newest two and the WAL from the older one's start;
// that one restores to the end of the archive with the source's data.
func TestDeleteRetain(t *testing.T) {
	forEachArchive(t, func(t *testing.T, a *archive) {
		src := archivingCluster(t, a, nil)
		src.Pgbench(t, "-i", "-s", "2", "-q")
		names := pushBackupsWithWALBetween(t, a, src, 4)
		src.Pgbench(t, "-n", "-t", "300", "postgres")
		want := src.QueryString(t, tableDigest)
		switchAndWaitArchived(t, src)
		s := openArchive(t, a)

		before := listObjects(t, s, "")
		dry := mustRun(t, "", env(a, nil), "delete", "retain", "2")
		for _, n := range names[:2] {
			if !strings.Contains(dry.Stdout, "would delete backup "+n) {
				t.Errorf("dry run does not list %s:\n%s", n, dry.Stdout)
			}
		}
		if !strings.Contains(dry.Stdout, "would delete WAL timeline 1: ") || !strings.Contains(dry.Stdout, "dry run: nothing deleted") {
			t.Errorf("dry run output:\n%s", dry.Stdout)
		}
		if after := listObjects(t, s, ""); !mapsEqual(before, after) {
			t.Fatalf("dry run changed the archive: %d objects before, %d after", len(before), len(after))
		}
		var plan struct {
			DryRun  bool  `json:"dry_run"`
			Objects int   `json:"objects"`
			Bytes   int64 `json:"bytes"`
			Backups []struct {
				Name string `json:"name"`
			} `json:"backups"`
		}
		js := mustRun(t, "", env(a, nil), "delete", "retain", "2", "--json").Stdout
		if err := json.Unmarshal([]byte(js), &plan); err != nil || !plan.DryRun || len(plan.Backups) != 2 || plan.Objects == 0 || plan.Bytes == 0 {
			t.Fatalf("delete --json (%v):\n%s", err, js)
		}

		r := mustRun(t, "", env(a, nil), "delete", "retain", "2", "--confirm")
		t.Logf("dry run:\n%s\nconfirmed:\n%s", dry.Stdout, r.Stdout)
		if got := backupNames(t, a); !slices.Equal(got, names[2:]) {
			t.Fatalf("after retain 2: %v, want %v\n%s", got, names[2:], r.Stdout)
		}
		left := listObjects(t, s, "")
		cutoff := segmentNumber(t, strings.Split(names[2], "_")[1])
		for k := range before {
			_, still := left[k]
			switch {
			case strings.HasPrefix(k, "backups/"+names[0]), strings.HasPrefix(k, "backups/"+names[1]):
				if still {
					t.Errorf("deleted backup's %s is still there", k)
				}
			case strings.HasPrefix(k, "wal/"):
				_, seg, placed := walPosition(t, k)
				if wantKept := !placed || seg >= cutoff; still != wantKept {
					t.Errorf("%s: kept %v, want %v (WAL kept from segment %X)", k, still, wantKept, cutoff)
				}
			default:
				if !still {
					t.Errorf("%s deleted", k)
				}
			}
		}
		checkListedWhole(t, a, s)

		again := mustRun(t, "", env(a, nil), "delete", "retain", "2", "--confirm")
		if !strings.Contains(again.Stdout, "nothing to delete") {
			t.Errorf("second retain 2:\n%s", again.Stdout)
		}

		dest := filepath.Join(a.Dir, "restored")
		mustRun(t, "", env(a, nil), "backup-fetch", dest, names[2])
		verifyBackup(t, dest)
		restored := startRestored(t, a, dest)
		if got := restored.QueryString(t, tableDigest); got != want {
			t.Fatalf("%s restored to the end of the archive: digest %s, want %s", names[2], got, want)
		}
	})
}

func mapsEqual(a, b map[string]storage.ObjectInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v.Size != w.Size || !v.ModTime.Equal(w.ModTime) {
			return false
		}
	}
	return true
}

// A permanent backup survives retain 1 with the WAL from its start to its
// stop segment, and restores to its end point; the WAL between it and the
// retained backup goes. Made impermanent, the next retain 1 removes it.
func TestDeleteKeepsPermanentBackup(t *testing.T) {
	forEachArchive(t, func(t *testing.T, a *archive) {
		src := archivingCluster(t, a, nil)
		src.Pgbench(t, "-i", "-s", "2", "-q")
		switchAndWaitArchived(t, src)
		wantPerm := src.QueryString(t, tableDigest)
		perm := strings.TrimSpace(mustRun(t, "", env(a, src), "backup-push", src.DataDir).Stdout)
		if r := mustRun(t, "", env(a, nil), "backup-mark", perm); !strings.Contains(r.Stdout, perm+" is now permanent") {
			t.Errorf("backup-mark: %s", r)
		}
		if r := mustRun(t, "", env(a, nil), "backup-mark", "LATEST"); !strings.Contains(r.Stdout, "already permanent") {
			t.Errorf("backup-mark LATEST again: %s", r)
		}
		names := pushBackupsWithWALBetween(t, a, src, 2)
		src.Pgbench(t, "-n", "-t", "100", "postgres")
		switchAndWaitArchived(t, src)

		list := sentinels(t, a)
		if len(list) != 3 || !list[0].Permanent || list[1].Permanent {
			t.Fatalf("backup-list --json does not show %s alone as permanent: %+v", perm, list)
		}
		detail := mustRun(t, "", env(a, nil), "backup-list", "--detail", "--csv").Stdout
		if lines := strings.Split(strings.TrimSpace(detail), "\n"); !strings.HasSuffix(lines[0], ",permanent") || !strings.HasSuffix(lines[1], ",true") || !strings.HasSuffix(lines[2], ",false") {
			t.Errorf("backup-list --detail --csv:\n%s", detail)
		}
		s := openArchive(t, a)
		permStop := segmentNumber(t, list[0].StopSegment)
		cutoff := segmentNumber(t, list[2].StartSegment)

		r := mustRun(t, "", env(a, nil), "delete", "retain", "1", "--confirm")
		if got := backupNames(t, a); !slices.Equal(got, []string{perm, names[1]}) {
			t.Fatalf("after retain 1: %v, want [%s %s]\n%s", got, perm, names[1], r.Stdout)
		}
		if !strings.Contains(r.Stdout, "(1 permanent)") {
			t.Errorf("retain 1 output does not count the permanent backup:\n%s", r.Stdout)
		}
		checkListedWhole(t, a, s)
		for k := range listObjects(t, s, "wal/") {
			if _, seg, ok := walPosition(t, k); ok && seg > permStop && seg < cutoff {
				t.Errorf("%s, between the permanent backup's stop and the retained backup's start, was kept", k)
			}
		}

		// Its end point: recovery replays start..stop, finds nothing
		// after it, and promotes there.
		dest := filepath.Join(a.Dir, "restored-permanent")
		mustRun(t, "", env(a, nil), "backup-fetch", dest, perm)
		verifyBackup(t, dest)
		restored := startRestored(t, a, dest)
		if got := restored.QueryString(t, tableDigest); got != wantPerm {
			t.Fatalf("permanent backup restored to its end point: digest %s, want %s", got, wantPerm)
		}

		mustRun(t, "", env(a, nil), "backup-mark", "--impermanent", perm)
		mustRun(t, "", env(a, nil), "delete", "retain", "1", "--confirm")
		if got := backupNames(t, a); !slices.Equal(got, []string{names[1]}) {
			t.Fatalf("after --impermanent and retain 1: %v", got)
		}
	})
}

// A delete that fails after a few object deletes, as a killed one would
// stop, leaves every listed backup whole and restorable; running it again
// finishes at once, without waiting out the grace period.
func TestDeleteInterruptedThenRerun(t *testing.T) {
	forEachArchive(t, func(t *testing.T, a *archive) {
		src := archivingCluster(t, a, nil)
		src.Pgbench(t, "-i", "-s", "2", "-q")
		names := pushBackupsWithWALBetween(t, a, src, 3)
		src.Pgbench(t, "-n", "-t", "100", "postgres")
		switchAndWaitArchived(t, src)
		s := openArchive(t, a)
		pol := retention.Policy{Mode: retention.Retain, Retain: 1, Grace: retention.DefaultGrace}

		for round := 0; ; round++ {
			f := storagetest.NewFaulty(s, storagetest.Fault{Op: storagetest.OpDelete, After: 3})
			_, err := retention.Delete(t.Context(), retention.Options{Store: f, Policy: pol, Confirm: true})
			if !errors.Is(err, storagetest.ErrInjected) {
				t.Fatalf("round %d: delete with a store that fails after 3 deletes: %v", round, err)
			}
			listed := checkListedWhole(t, a, s)
			if round == 0 {
				// Whatever is listed restores: its files are all there.
				for _, n := range listed {
					dest := filepath.Join(a.Dir, "interrupted-"+n)
					mustRun(t, "", env(a, nil), "backup-fetch", dest, n, "--no-recovery")
					verifyBackup(t, dest)
				}
			}
			if round == 1 {
				break
			}
		}

		r := mustRun(t, "", env(a, nil), "delete", "retain", "1", "--confirm")
		if !strings.Contains(r.Stdout, "left by an interrupted delete") {
			t.Errorf("rerun does not say it finished an interrupted delete:\n%s", r.Stdout)
		}
		if got := backupNames(t, a); !slices.Equal(got, names[2:]) {
			t.Fatalf("after the rerun: %v, want %v", got, names[2:])
		}
		for k := range listObjects(t, s, "backups/") {
			if !strings.HasPrefix(k, "backups/"+names[2]) {
				t.Errorf("after the rerun %s is left", k)
			}
		}
		checkListedWhole(t, a, s)
		if r := mustRun(t, "", env(a, nil), "delete", "retain", "1", "--confirm"); !strings.Contains(r.Stdout, "nothing to delete") {
			t.Errorf("third run:\n%s", r.Stdout)
		}
	})
}

// After a restore promoted to timeline 2, archived more and took a backup
// there, retain 1 keeps the history file and the WAL that backup needs,
// and point-in-time recovery on timeline 2 works.
func TestDeleteAfterPromotion(t *testing.T) {
	forEachArchive(t, func(t *testing.T, a *archive) {
		src := archivingCluster(t, a, nil)
		src.Pgbench(t, "-i", "-s", "2", "-q")
		tl1 := strings.TrimSpace(mustRun(t, "", env(a, src), "backup-push", src.DataDir).Stdout)
		src.Pgbench(t, "-n", "-t", "300", "postgres")
		switchAndWaitArchived(t, src)
		src.Stop(t)

		// Restore to the end of the archive; it promotes to timeline 2 and
		// archives into the same archive.
		dir2 := filepath.Join(a.Dir, "timeline2")
		mustRun(t, "", env(a, nil), "backup-fetch", dir2, tl1)
		tl2 := testpg.Start(t, dir2, restoreOpts(a))
		tl2.WaitReady(t, 5*time.Minute)
		tl2.Pgbench(t, "-n", "-t", "300", "postgres")
		switchAndWaitArchived(t, tl2)
		b2 := strings.TrimSpace(mustRun(t, "", env(a, tl2), "backup-push", tl2.DataDir).Stdout)
		if !strings.HasPrefix(b2, "base_00000002") {
			t.Fatalf("backup on the promoted server is %s, want timeline 2", b2)
		}
		tl2.Pgbench(t, "-n", "-t", "300", "postgres")
		want := tl2.QueryString(t, tableDigest)
		tl2.Exec(t, "SELECT pg_create_restore_point('on_timeline_2')")
		tl2.Exec(t, "DELETE FROM pgbench_history")
		switchAndWaitArchived(t, tl2)

		s := openArchive(t, a)
		r := mustRun(t, "", env(a, nil), "delete", "retain", "1", "--confirm")
		if got := backupNames(t, a); !slices.Equal(got, []string{b2}) {
			t.Fatalf("after retain 1: %v, want [%s]\n%s", got, b2, r.Stdout)
		}
		if len(listObjects(t, s, "wal/00000002.history-")) != 1 {
			t.Fatal("00000002.history deleted")
		}
		checkListedWhole(t, a, s)
		cutoff := segmentNumber(t, strings.Split(b2, "_")[1])
		var tl2After int
		for k := range listObjects(t, s, "wal/") {
			tli, seg, ok := walPosition(t, k)
			if ok && seg < cutoff {
				t.Errorf("%s, before the retained backup's start, was kept", k)
			}
			if ok && tli == 2 && seg >= cutoff {
				tl2After++
			}
		}
		if tl2After < 2 {
			t.Errorf("%d timeline 2 segments from the retained backup's start on; want its own and those after", tl2After)
		}

		dest := filepath.Join(a.Dir, "pitr-timeline2")
		mustRun(t, "", env(a, nil), "backup-fetch", dest, "LATEST",
			"--recovery-target-name", "on_timeline_2", "--recovery-target-action", "promote")
		verifyBackup(t, dest)
		restored := startRestored(t, a, dest)
		if got := restored.QueryString(t, tableDigest); got != want {
			t.Fatalf("PITR on timeline 2 to the restore point: digest %s, want %s", got, want)
		}
	})
}

// killedBackupPush starts a backup-push of src, kills it once it has
// stored its first partition, and returns the unfinished backup's name.
func killedBackupPush(t *testing.T, a *archive, src *testpg.Cluster, s storage.Store) string {
	t.Helper()
	known := listObjects(t, s, "backups/")
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
	defer func() {
		syscall.Kill(-pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for k := range listObjects(t, s, "backups/") {
			if _, old := known[k]; !old && strings.Contains(k, "/part_0001") {
				if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				err := cmd.Wait()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || !ee.ProcessState.Sys().(syscall.WaitStatus).Signaled() {
					t.Fatalf("backup-push was not killed mid-way (wait: %v):\n%s", err, out.String())
				}
				return strings.Split(strings.TrimPrefix(k, "backups/"), "/")[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup-push stored no part_0001 within 2 minutes:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newestModTime(objects map[string]storage.ObjectInfo) time.Time {
	var t time.Time
	for _, o := range objects {
		if o.ModTime.After(t) {
			t = o.ModTime
		}
	}
	return t
}

// Two killed backup-pushes leave backups without a sentinel, some seconds
// apart. With a grace period between their ages, garbage removes the
// older and keeps the younger (it could be a running backup-push), and
// removes the WAL older than the oldest backup.
func TestDeleteGarbageGracePeriod(t *testing.T) {
	forEachArchive(t, func(t *testing.T, a *archive) {
		src := archivingCluster(t, a, nil)
		src.Pgbench(t, "-i", "-s", "10", "-q")
		switchAndWaitArchived(t, src)
		committed := strings.TrimSpace(mustRun(t, "", env(a, src), "backup-push", src.DataDir).Stdout)
		s := openArchive(t, a)

		older := killedBackupPush(t, a, src, s)
		time.Sleep(8 * time.Second)
		src.Pgbench(t, "-n", "-t", "100", "postgres")
		younger := killedBackupPush(t, a, src, s)
		if older == younger {
			t.Fatalf("both killed backups are %s", older)
		}
		olderObjs := listObjects(t, s, "backups/"+older+"/")
		youngerObjs := listObjects(t, s, "backups/"+younger+"/")
		t1, t2 := newestModTime(olderObjs), newestModTime(youngerObjs)
		if t2.Sub(t1) < 6*time.Second {
			t.Fatalf("killed backups only %s apart", t2.Sub(t1))
		}
		// Halfway between their ages.
		grace := (time.Since(t2) + t2.Sub(t1)/2).Truncate(time.Second)
		walBefore := listObjects(t, s, "wal/")

		r := mustRun(t, "", env(a, nil), "delete", "garbage", "--grace", grace.String(), "--confirm")
		if left := listObjects(t, s, "backups/"+older+"/"); len(left) != 0 {
			t.Errorf("garbage --grace %s kept %d objects of %s, last written %s ago:\n%s", grace, len(left), older, time.Since(t1), r.Stdout)
		}
		if left := listObjects(t, s, "backups/"+younger+"/"); !mapsEqual(left, youngerObjs) {
			t.Errorf("garbage --grace %s touched %s, last written %s ago:\n%s", grace, younger, time.Since(t2), r.Stdout)
		}
		if got := backupNames(t, a); !slices.Equal(got, []string{committed}) {
			t.Errorf("backups after garbage: %v", got)
		}
		cutoff := segmentNumber(t, strings.Split(committed, "_")[1])
		var gone int
		walAfter := listObjects(t, s, "wal/")
		for k := range walBefore {
			_, seg, placed := walPosition(t, k)
			_, still := walAfter[k]
			if wantKept := !placed || seg >= cutoff; still != wantKept {
				t.Errorf("%s: kept %v, want %v", k, still, wantKept)
			}
			if !still {
				gone++
			}
		}
		if gone == 0 {
			t.Error("garbage deleted no WAL older than the only backup")
		}
		checkListedWhole(t, a, s)
		if !strings.Contains(r.Stdout, "1 kept as possibly running") {
			t.Errorf("garbage output:\n%s", r.Stdout)
		}
	})
}
