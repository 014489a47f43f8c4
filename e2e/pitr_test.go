package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// The main story: archive, load, back up while pgbench writes,
// write more, create a restore point, drop a table, restore to the restore
// point, and find the table as it was.
func TestPITRToRestorePoint(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Pgbench(t, "-i", "-s", "5", "-q")

	// backup-push while pgbench writes.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	load := src.Command(ctx, nil, filepath.Join(src.BinDir, "pgbench"), "-n", "-c", "2", "-T", "30", "postgres")
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	name := strings.TrimSpace(mustRun(t, "", env(a, src, "WALNUT_PARTITION_SIZE=8388608"), "backup-push", src.DataDir).Stdout)
	cancel()
	load.Wait()
	if !strings.HasPrefix(name, "base_00000001") {
		t.Fatalf("backup name %q", name)
	}

	src.Pgbench(t, "-n", "-c", "2", "-t", "300", "postgres")
	want := src.QueryString(t, "SELECT count(*) || '/' || sum(abalance) FROM pgbench_accounts")
	src.Exec(t, "SELECT pg_create_restore_point('before_drop')")
	src.Exec(t, "DROP TABLE pgbench_accounts")
	switchAndWaitArchived(t, src)

	dest := filepath.Join(a.Dir, "restored")
	r := mustRun(t, "", env(a, nil), "backup-fetch", dest, "LATEST",
		"--recovery-target-name", "before_drop", "--recovery-target-action", "promote")
	if !strings.Contains(r.Stdout, name) || !strings.Contains(r.Stdout, "pg_ctl -D") {
		t.Errorf("backup-fetch output does not name the backup and how to start it:\n%s", r.Stdout)
	}
	verifyBackup(t, dest)
	restored := testpg.Start(t, dest, restoreOpts(a))
	restored.WaitReady(t, 5*time.Minute)
	got := restored.QueryString(t, "SELECT count(*) || '/' || sum(abalance) FROM pgbench_accounts")
	if got != want {
		t.Fatalf("restored pgbench_accounts %s, want %s as at the restore point", got, want)
	}
	// Promotion starts timeline 2, whose history file the restored server
	// archives through walnut into the same archive.
	deadline := time.Now().Add(time.Minute)
	for {
		if m, _ := filepath.Glob(filepath.Join(a.Path, "wal", "00000002.history-*")); len(m) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("00000002.history not archived after promotion\n%s", restored.LogTail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
	restored.Stop(t)

	// The source goes on with timeline 1 and takes a later backup, which
	// ends after timeline 2 branched off: following the newest timeline,
	// as PostgreSQL does by default, cannot work from it. backup-fetch
	// says so, and the timeline it names does work.
	later := strings.TrimSpace(mustRun(t, "", env(a, src), "backup-push", src.DataDir).Stdout)
	src.Exec(t, "CREATE TABLE after_later AS SELECT 1 AS x")
	switchAndWaitArchived(t, src)
	dest = filepath.Join(a.Dir, "later")
	r = mustRun(t, "", env(a, nil), "backup-fetch", dest, later, "--archive-mode", "off")
	if !strings.Contains(r.Stderr, "00000002.history") || !strings.Contains(r.Stderr, "--recovery-target-timeline current") {
		t.Errorf("backup-fetch of %s does not warn that timeline 2 cannot be followed:\n%s", later, r.Stderr)
	}
	os.RemoveAll(dest)
	mustRun(t, "", env(a, nil), "backup-fetch", dest, later, "--recovery-target-timeline", "current", "--archive-mode", "off")
	inspected := testpg.Start(t, dest, restoreOpts(a))
	inspected.WaitReady(t, 5*time.Minute)
	if got := inspected.QueryString(t, "SELECT count(*) FROM after_later"); got != "1" {
		t.Errorf("restore of %s on timeline 1 to its end: after_later has %s rows", later, got)
	}
	// archive_mode = off: the restore promoted to timeline 3 and archived
	// nothing into the source's archive.
	if got := inspected.QueryString(t, "SELECT current_setting('archive_mode') || ' ' || left(pg_walfile_name(pg_current_wal_lsn()), 8)"); got != "off 00000003" {
		t.Errorf("archive_mode and timeline of the inspected restore: %q, want off 00000003", got)
	}
	inspected.Exec(t, "SELECT pg_switch_wal()")
	time.Sleep(2 * time.Second)
	if m, _ := filepath.Glob(filepath.Join(a.Path, "wal", "00000003*")); len(m) != 0 {
		t.Errorf("a restore with --archive-mode off archived %v", m)
	}
}

// Restore to the end of the archive: data equals the source, tablespaces
// included, from a backup split into many partitions.
func TestRestoreToEndOfArchiveWithTablespace(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	tsDir := createTablespace(t, src, filepath.Join(a.Dir, "ts1"), "ts1")
	src.Pgbench(t, "-i", "-s", "3", "-q")
	src.Exec(t, "CREATE TABLE in_ts TABLESPACE ts1 AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g")
	src.Exec(t, "CREATE UNLOGGED TABLE scratch AS SELECT g FROM generate_series(1, 1000) g")

	mustRun(t, "", env(a, src, "WALNUT_PARTITION_SIZE=4194304", "WALNUT_UPLOAD_CONCURRENCY=3", "WALNUT_COMPRESSION=lz4"), "backup-push", src.DataDir)
	src.Pgbench(t, "-n", "-c", "2", "-t", "200", "postgres")
	src.Exec(t, "INSERT INTO in_ts SELECT g, 'after' FROM generate_series(50001, 50100) g")
	want := src.QueryString(t, tableDigest)
	wantTS := src.QueryString(t, "SELECT count(*) || '/' || md5(string_agg(v, ',' ORDER BY id)) FROM in_ts")
	switchAndWaitArchived(t, src)

	list := mustRun(t, "", env(a, nil), "backup-list", "--json").Stdout
	if !strings.Contains(list, `"compression": "lz4"`) {
		t.Errorf("backup-list --json does not show the lz4 backup:\n%s", list)
	}
	dest := filepath.Join(a.Dir, "restored")
	newTS := filepath.Join(a.Dir, "ts1-restored")
	mustRun(t, "", env(a, nil, "WALNUT_DOWNLOAD_CONCURRENCY=3"), "backup-fetch", dest, "LATEST", "--tablespace-mapping", tsDir+"="+newTS)
	// tablespace_map was rewritten for the new location.
	verifyBackup(t, dest, "--ignore=tablespace_map")
	restored := testpg.Start(t, dest, restoreOpts(a))
	restored.WaitReady(t, 5*time.Minute)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("restored pgbench data digest %s, want %s", got, want)
	}
	if got := restored.QueryString(t, "SELECT count(*) || '/' || md5(string_agg(v, ',' ORDER BY id)) FROM in_ts"); got != wantTS {
		t.Fatalf("restored tablespace table %s, want %s", got, wantTS)
	}
	if loc := restored.QueryString(t, "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts1'"); loc != newTS {
		t.Fatalf("tablespace restored at %s, want %s", loc, newTS)
	}
	if n := restored.QueryString(t, "SELECT count(*)::text FROM scratch"); n != "0" {
		t.Fatalf("unlogged table has %s rows after restore, want 0 (reset from its init fork)", n)
	}
}

// verifyBackup checks a restored, not yet started data directory with
// PostgreSQL's own pg_verifybackup against the backup_manifest walnut
// restored: every file present, none extra, sizes and CRC32C equal.
func verifyBackup(t *testing.T, dataDir string, args ...string) {
	t.Helper()
	bin, err := testpg.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(dataDir); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"--no-parse-wal"}, append(args, dataDir)...)
	out, err := testpg.Command(t.Context(), nil, filepath.Join(bin, "pg_verifybackup"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_verifybackup %s: %v\n%s", dataDir, err, out)
	}
}

// Segment names and LSN math follow the cluster's WAL segment size, not
// the 16 MiB default: a cluster made with --wal-segsize=64 restores too.
func TestRestoreWith64MiBSegments(t *testing.T) {
	a := newArchive(t)
	src := testpg.New(t, testpg.Options{
		Conf:       map[string]string{"archive_mode": "on", "archive_command": walnutBin + " wal-push %p"},
		Env:        []string{"WALNUT_PREFIX=" + a.Prefix},
		InitdbArgs: []string{"--wal-segsize=64"},
	})
	src.Pgbench(t, "-i", "-s", "2", "-q")
	name := strings.TrimSpace(mustRun(t, "", env(a, src), "backup-push", src.DataDir).Stdout)
	src.Pgbench(t, "-n", "-t", "200", "postgres")
	want := src.QueryString(t, tableDigest)
	switchAndWaitArchived(t, src)

	var sn struct {
		WALSegmentSize uint64 `json:"wal_segment_size"`
		StartSegment   string `json:"wal_segment_backup_start"`
		StartLSN       string `json:"start_lsn"`
	}
	b, err := os.ReadFile(filepath.Join(a.Path, "backups", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sn); err != nil {
		t.Fatal(err)
	}
	// PostgreSQL's own name for the segment holding the start LSN.
	wantSeg := src.QueryString(t, "SELECT pg_walfile_name('"+sn.StartLSN+"')")
	if sn.WALSegmentSize != 64<<20 || sn.StartSegment != wantSeg || !strings.Contains(name, wantSeg) {
		t.Fatalf("sentinel: segment size %d, start segment %s (name %s)", sn.WALSegmentSize, sn.StartSegment, name)
	}
	dest := filepath.Join(a.Dir, "restored")
	mustRun(t, "", env(a, nil), "backup-fetch", dest, "LATEST")
	verifyBackup(t, dest)
	restored := startRestored(t, a, dest)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("restored digest %s, want %s", got, want)
	}
}
