package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// deltaDigest covers the pgbench tables and the tables the test
// truncates, shrinks, drops and re-creates between backups.
const deltaDigest = `SELECT (` + tableDigest + `) || ' ' || (SELECT count(*) || '/' || coalesce(md5(string_agg(v, ',' ORDER BY id)), '') FROM churn)
	|| ' ' || (SELECT count(*) || '/' || coalesce(md5(string_agg(v, ',' ORDER BY id)), '') FROM shrink)
	|| ' ' || (SELECT count(*) || '/' || coalesce(md5(string_agg(v, ',' ORDER BY id)), '') FROM recreated)`

type deltaSentinel struct {
	Name         string `json:"name"`
	DeltaBase    string `json:"delta_base"`
	DeltaDepth   int    `json:"delta_depth"`
	DeltaBaseLSN string `json:"delta_base_start_lsn"`
	StartLSN     string `json:"start_lsn"`
	ExpandedSize int64  `json:"expanded_size_bytes"`
}

func readDeltaSentinel(t *testing.T, a *archive, name string) deltaSentinel {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(a.Path, "backups", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var sn deltaSentinel
	if err := json.Unmarshal(b, &sn); err != nil {
		t.Fatal(err)
	}
	return sn
}

// The delta story: a full backup, pgbench writes, a delta, more
// writes, a delta; each restored to a point in time after it with equal
// table digests, while relations are truncated, shrunk in place, dropped
// and re-created between the steps.
func TestDeltaChainPITR(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Pgbench(t, "-i", "-s", "3", "-q")
	src.Exec(t, "CREATE TABLE churn AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g")
	src.Exec(t, "CREATE TABLE shrink AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g")
	src.Exec(t, "CREATE TABLE recreated AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g")
	push := func(extra ...string) string {
		t.Helper()
		args := append([]string{"backup-push"}, extra...)
		return strings.TrimSpace(mustRun(t, "", env(a, src), append(args, src.DataDir)...).Stdout)
	}
	point := func(name string) string {
		t.Helper()
		want := src.QueryString(t, deltaDigest)
		src.Exec(t, "SELECT pg_create_restore_point('"+name+"')")
		return want
	}

	full := push("--delta") // nothing to be a delta of: full
	if sn := readDeltaSentinel(t, a, full); sn.DeltaBase != "" {
		t.Fatalf("first backup-push --delta made a delta over %s; want a full backup", sn.DeltaBase)
	}
	src.Pgbench(t, "-n", "-c", "2", "-t", "200", "postgres")
	src.Exec(t, "TRUNCATE churn")
	src.Exec(t, "INSERT INTO churn SELECT g, 'after truncate ' || g FROM generate_series(1, 300) g")
	src.Exec(t, "DELETE FROM shrink WHERE id > 2000")
	src.Exec(t, "VACUUM shrink") // truncates the file in place: same relfilenode, fewer pages
	src.Exec(t, "DROP TABLE recreated")
	src.Exec(t, "CREATE TABLE recreated AS SELECT g AS id, 'second ' || g AS v FROM generate_series(1, 700) g")
	want0 := point("after_full")

	d1 := push("--delta")
	sn1, snFull := readDeltaSentinel(t, a, d1), readDeltaSentinel(t, a, full)
	if sn1.DeltaBase != full || sn1.DeltaDepth != 1 || sn1.DeltaBaseLSN != snFull.StartLSN {
		t.Fatalf("delta %s: base %q depth %d base LSN %s; want base %s depth 1 base LSN %s", d1, sn1.DeltaBase, sn1.DeltaDepth, sn1.DeltaBaseLSN, full, snFull.StartLSN)
	}
	if sn1.ExpandedSize*2 > snFull.ExpandedSize {
		t.Errorf("delta %s stores %d bytes, the full backup %d: the unchanged pages were stored too", d1, sn1.ExpandedSize, snFull.ExpandedSize)
	}
	src.Pgbench(t, "-n", "-c", "2", "-t", "200", "postgres")
	src.Exec(t, "INSERT INTO churn SELECT g, 'step two ' || g FROM generate_series(301, 900) g")
	src.Exec(t, "DROP TABLE recreated")
	src.Exec(t, "CREATE TABLE recreated AS SELECT g AS id, 'third ' || g AS v FROM generate_series(1, 300) g")
	src.Exec(t, "TRUNCATE shrink")
	want1 := point("after_d1")

	d2 := push("--delta")
	if sn := readDeltaSentinel(t, a, d2); sn.DeltaBase != d1 || sn.DeltaDepth != 2 {
		t.Fatalf("delta %s: base %q depth %d; want base %s depth 2", d2, sn.DeltaBase, sn.DeltaDepth, d1)
	}
	src.Pgbench(t, "-n", "-c", "2", "-t", "200", "postgres")
	src.Exec(t, "INSERT INTO shrink SELECT g, 'refilled ' || g FROM generate_series(1, 1000) g")
	want2 := point("after_d2")
	switchAndWaitArchived(t, src)

	mustRun(t, "", env(a, nil), "backup-verify", "--all")
	list := mustRun(t, "", env(a, nil), "backup-list").Stdout
	if !strings.Contains(list, "delta_base\tchain_stored_size_bytes") || !strings.Contains(list, "\t"+d1+"\t") {
		t.Errorf("backup-list does not show the deltas' bases:\n%s", list)
	}
	for _, c := range []struct{ backup, target, want string }{
		{full, "after_full", want0}, {d1, "after_d1", want1}, {d2, "after_d2", want2},
	} {
		dest := filepath.Join(a.Dir, "restore-"+c.target)
		r := mustRun(t, "", env(a, nil), "backup-fetch", dest, c.backup, "--recovery-target-name", c.target, "--recovery-target-action", "promote")
		if applied := strings.Count(r.Stderr, "delta applied"); applied != readDeltaSentinel(t, a, c.backup).DeltaDepth {
			t.Errorf("backup-fetch %s applied %d deltas:\n%s", c.backup, applied, r.Stderr)
		}
		restored := startRestored(t, a, dest)
		if got := restored.QueryString(t, deltaDigest); got != c.want {
			t.Errorf("backup %s restored to %s: digest %s, want %s", c.backup, c.target, got, c.want)
		}
		restored.Stop(t)
	}

	// WALNUT_DELTA_MAX_STEPS: a chain of two deltas takes a full backup
	// next; one present but not a number is refused.
	if r := run(t, "", env(a, src, "WALNUT_DELTA_MAX_STEPS=two"), "backup-push", "--delta", src.DataDir); r.Code == 0 || !strings.Contains(r.Stderr, "WALNUT_DELTA_MAX_STEPS") {
		t.Fatalf("WALNUT_DELTA_MAX_STEPS=two accepted: %s", r)
	}
	r := mustRun(t, "", env(a, src, "WALNUT_DELTA_MAX_STEPS=2"), "backup-push", "--delta", src.DataDir)
	full2 := strings.TrimSpace(r.Stdout)
	if sn := readDeltaSentinel(t, a, full2); sn.DeltaBase != "" || !strings.Contains(r.Stderr, "WALNUT_DELTA_MAX_STEPS") {
		t.Fatalf("after two deltas with WALNUT_DELTA_MAX_STEPS=2: backup over %q; log:\n%s", sn.DeltaBase, r.Stderr)
	}
	d3 := push("--delta")
	if sn := readDeltaSentinel(t, a, d3); sn.DeltaBase != full2 {
		t.Fatalf("delta %s: base %q, want the new full backup %s", d3, sn.DeltaBase, full2)
	}

	// delete retain 1 keeps the newest delta's chain, and says so; the
	// chain still restores.
	r = mustRun(t, "", env(a, nil), "delete", "retain", "1", "--confirm")
	if !strings.Contains(r.Stdout+r.Stderr, full2+" is kept") {
		t.Errorf("delete retain 1 does not say why %s is kept:\n%s", full2, r)
	}
	for _, name := range []string{full, d1, d2} {
		if _, err := os.Stat(filepath.Join(a.Path, "backups", name+".json")); err == nil {
			t.Errorf("delete retain 1 kept %s, which no kept delta needs", name)
		}
	}
	src.Exec(t, "INSERT INTO churn SELECT g, 'last ' || g FROM generate_series(901, 950) g")
	want3 := src.QueryString(t, deltaDigest)
	switchAndWaitArchived(t, src)
	dest := filepath.Join(a.Dir, "restore-d3")
	mustRun(t, "", env(a, nil), "backup-fetch", dest, d3)
	restored := startRestored(t, a, dest)
	if got := restored.QueryString(t, deltaDigest); got != want3 {
		t.Errorf("backup %s restored after delete retain 1: digest %s, want %s", d3, got, want3)
	}
	restored.Stop(t)

	// A delta whose base is gone: no delta over it is taken, and it is
	// not restored.
	if err := os.Remove(filepath.Join(a.Path, "backups", full2+".json")); err != nil {
		t.Fatal(err)
	}
	r = run(t, "", env(a, src), "backup-push", "--delta", src.DataDir)
	if r.Code == 0 || !strings.Contains(r.Stderr, full2) || !strings.Contains(r.Stderr, "gone") {
		t.Fatalf("backup-push --delta over a delta whose base is gone: %s", r)
	}
	r = run(t, "", env(a, nil), "backup-fetch", filepath.Join(a.Dir, "broken"), d3)
	if r.Code == 0 || !strings.Contains(r.Stderr, full2) {
		t.Fatalf("backup-fetch of a delta whose base is gone: %s", r)
	}
	if r = run(t, "", env(a, nil), "backup-verify", d3); r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, full2) {
		t.Fatalf("backup-verify of a delta whose base is gone: %s", r)
	}
}

// A delta of a cluster with a tablespace, stored in many small partitions
// over a full backup whose large files are chunked: the changed pages of
// a relation in the tablespace land in the remapped location.
func TestDeltaTablespaceChunked(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	tsDir := createTablespace(t, src, filepath.Join(a.Dir, "ts1"), "ts1")
	src.Pgbench(t, "-i", "-s", "3", "-q")
	src.Exec(t, "CREATE TABLE in_ts TABLESPACE ts1 AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100000) g")
	src.Exec(t, "CREATE DATABASE moved STRATEGY FILE_COPY")
	const tsDigest = "SELECT count(*) || '/' || md5(string_agg(v, ',' ORDER BY id)) FROM in_ts"
	small := []string{"WALNUT_CHUNK_SIZE=1MiB", "WALNUT_PARTITION_SIZE=2097152", "WALNUT_UPLOAD_CONCURRENCY=3"}
	full := strings.TrimSpace(mustRun(t, "", env(a, src, small...), "backup-push", src.DataDir).Stdout)
	src.Pgbench(t, "-n", "-c", "2", "-t", "300", "postgres")
	src.Exec(t, "UPDATE in_ts SET v = 'changed ' || id WHERE id % 997 = 0")
	src.Exec(t, "DELETE FROM in_ts WHERE id > 90000")
	src.Exec(t, "VACUUM in_ts")
	// Both copy files with the page LSNs they had: the delta stores them
	// whole, as their database directories are new.
	src.Exec(t, "CREATE DATABASE copied STRATEGY FILE_COPY")
	src.Exec(t, "ALTER DATABASE moved SET TABLESPACE ts1")
	push, pushRSS := runMeasured(t, env(a, src, small...), "backup-push", "--delta", src.DataDir)
	d1 := strings.TrimSpace(push.Stdout)
	if sn := readDeltaSentinel(t, a, d1); sn.DeltaBase != full {
		t.Fatalf("delta %s: base %q, want %s", d1, sn.DeltaBase, full)
	}
	src.Exec(t, "INSERT INTO in_ts SELECT g, 'after' FROM generate_series(200001, 200100) g")
	want, wantTS := src.QueryString(t, tableDigest), src.QueryString(t, tsDigest)
	switchAndWaitArchived(t, src)

	dest, newTS := filepath.Join(a.Dir, "restored"), filepath.Join(a.Dir, "ts1-restored")
	_, fetchRSS := runMeasured(t, env(a, nil, "WALNUT_DOWNLOAD_CONCURRENCY=3"), "backup-fetch", dest, d1, "--tablespace-mapping", tsDir+"="+newTS)
	t.Logf("peak RSS: backup-push --delta %d KiB, backup-fetch of the chain %d KiB", pushRSS, fetchRSS)
	if pushRSS > 40<<10 || fetchRSS > 40<<10 {
		t.Errorf("peak RSS over 40 MiB: backup-push --delta %d KiB, backup-fetch %d KiB", pushRSS, fetchRSS)
	}
	for _, d := range []string{dest, newTS} { // runMeasured ran as this process's user
		if err := testpg.ChownToServer(d); err != nil {
			t.Fatal(err)
		}
	}
	restored := startRestored(t, a, dest)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Errorf("restored digest %s, want %s", got, want)
	}
	if got := restored.QueryString(t, tsDigest); got != wantTS {
		t.Errorf("restored in_ts %s, want %s", got, wantTS)
	}
	if dbs := restored.QueryString(t, "SELECT string_agg(datname || ':' || (SELECT spcname FROM pg_tablespace WHERE oid = dattablespace), ',' ORDER BY datname) FROM pg_database"); dbs != "copied:pg_default,moved:ts1,postgres:pg_default,template0:pg_default,template1:pg_default" {
		t.Errorf("restored databases %s", dbs)
	}
	if loc := restored.QueryString(t, "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts1'"); loc != newTS {
		t.Errorf("ts1 restored at %s, want %s", loc, newTS)
	}
	restored.Stop(t)

	// The restore drill restores the chain too, to the delta's end.
	scratch := filepath.Join(testpg.SharedTempDir(t), "drill")
	r := mustRun(t, "", env(a, nil), "backup-verify", "--restore", "--scratch", scratch, "--database", "postgres",
		"--query", "SELECT count(*) FROM in_ts", d1)
	if !strings.Contains(r.Stdout, "  90000\n") || !strings.Contains(r.Stdout, "drill ok") {
		t.Errorf("drill of delta %s:\n%s", d1, r)
	}
}
