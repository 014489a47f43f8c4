package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// backup-push --remote on a file:// archive: the PITR story of a backup
// taken from another host's point of view.
func TestRemoteBackupPITR(t *testing.T) {
	remoteBackupPITR(t, newArchive(t), false)
}

// The same on MinIO, where (as root) backup-push runs as another OS user,
// nobody, who can reach the server's socket but not its data directory:
// the second host's point of view.
func TestRemoteBackupPITRS3(t *testing.T) {
	m := startMinIO(t)
	remoteBackupPITR(t, newS3Archive(t, m, ""), testpg.AsRoot())
}

// remoteBackupPITR: a primary archiving with wal-push, a tablespace,
// pgbench writing while backup-push --remote takes the backup through the
// server's unix socket with no PGDATA (walnut runs in a directory of its
// own and is never told where the data lives); then more writes, a time,
// a drop; backup-fetch to that time; pg_verifybackup, WAL included; the
// restored tables equal the source's at that time.
func remoteBackupPITR(t *testing.T, a *archive, asNobody bool) {
	src := archivingCluster(t, a, nil)
	tsDir := createTablespace(t, src, filepath.Join(a.Dir, "ts1"), "ts1")
	src.Pgbench(t, "-i", "-s", "3", "-q")
	src.Exec(t, "CREATE TABLE in_ts TABLESPACE ts1 AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g")

	// The refusal first: PGDATA makes no sense with --remote.
	r := run(t, "", env(a, src), "backup-push", "--remote", src.DataDir)
	if r.Code == 0 || !strings.Contains(r.Stderr, "--remote takes no PGDATA") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Fatalf("backup-push --remote PGDATA: want one line refusing PGDATA\n%s", r)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	load := src.Command(ctx, nil, filepath.Join(src.BinDir, "pgbench"), "-n", "-c", "2", "-T", "30", "postgres")
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	elsewhere := testpg.SharedTempDir(t)
	// Small partitions and 1 MiB chunks: many partitions, and big files
	// split across workers.
	pushEnv := env(a, src, "WALNUT_PARTITION_SIZE=4194304", "WALNUT_UPLOAD_CONCURRENCY=3")
	var push result
	if asNobody {
		push = runAsNobody(t, src, pushEnv, "backup-push", "--remote")
	} else {
		push = mustRun(t, elsewhere, pushEnv, "backup-push", "--remote")
	}
	cancel()
	load.Wait()
	name := strings.TrimSpace(push.Stdout)
	if !strings.HasPrefix(name, "base_00000001") {
		t.Fatalf("backup name %q\n%s", name, push)
	}
	if a.Path != "" {
		if m, _ := filepath.Glob(filepath.Join(a.Path, "backups", name, "server_backup_manifest*")); len(m) != 1 {
			t.Errorf("the server's backup_manifest was not kept: %v", m)
		}
		var sn struct {
			Partitions int `json:"partitions"`
		}
		b, err := os.ReadFile(filepath.Join(a.Path, "backups", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &sn); err != nil || sn.Partitions < 4 {
			t.Errorf("sentinel: %d partitions (%v); want the stream spread over many", sn.Partitions, err)
		}
	}
	mustRun(t, "", env(a, nil), "backup-verify", name)

	src.Pgbench(t, "-n", "-c", "2", "-t", "200", "postgres")
	src.Exec(t, "INSERT INTO in_ts SELECT g, 'after' FROM generate_series(50001, 50100) g")
	want := src.QueryString(t, tableDigest)
	wantTS := src.QueryString(t, "SELECT count(*) || '/' || md5(string_agg(v, ',' ORDER BY id)) FROM in_ts")
	time.Sleep(1100 * time.Millisecond)
	target := src.QueryString(t, "SELECT now()::text")
	time.Sleep(1100 * time.Millisecond)
	src.Exec(t, "DROP TABLE pgbench_accounts")
	src.Exec(t, "DELETE FROM in_ts")
	switchAndWaitArchived(t, src)

	dest := filepath.Join(a.Dir, "restored")
	newTS := filepath.Join(a.Dir, "ts1-restored")
	mustRun(t, "", env(a, nil), "backup-fetch", dest, name, "--tablespace-mapping", tsDir+"="+newTS,
		"--recovery-target-time", target, "--recovery-target-action", "promote")
	verifyWithWAL(t, a, dest, "--ignore=tablespace_map")
	restored := startRestored(t, a, dest)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("restored from the remote backup: digest %s, want %s", got, want)
	}
	if got := restored.QueryString(t, "SELECT count(*) || '/' || md5(string_agg(v, ',' ORDER BY id)) FROM in_ts"); got != wantTS {
		t.Fatalf("restored tablespace table %s, want %s", got, wantTS)
	}
}

// backup-push --remote from a streaming standby: the WAL reaches the
// archive through the primary's archive_command, and the backup waits for
// it as backup-push does.
func TestRemoteBackupFromStandby(t *testing.T) {
	a := newArchive(t)
	primary := archivingCluster(t, a, nil)
	primary.Pgbench(t, "-i", "-s", "2", "-q")
	standbyDir := filepath.Join(testpg.SharedTempDir(t), "standby")
	out, err := primary.Command(t.Context(), nil, filepath.Join(primary.BinDir, "pg_basebackup"),
		"-D", standbyDir, "-R", "-X", "stream", "-c", "fast").CombinedOutput()
	if err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	standby := testpg.Start(t, standbyDir, testpg.Options{Env: []string{"WALNUT_PREFIX=" + a.Prefix}})
	primary.Pgbench(t, "-n", "-t", "100", "postgres")
	want := primary.QueryString(t, tableDigest)
	waitReplayed(t, primary, standby)

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	go func() {
		for ctx.Err() == nil {
			primary.ExecErr(ctx, "SELECT pg_switch_wal()")
			time.Sleep(300 * time.Millisecond)
		}
	}()
	// The connection from --dsn alone, no PG* variables.
	dsn := fmt.Sprintf("host=%s port=%d user=postgres", standby.SocketDir, standby.Port)
	r := mustRun(t, testpg.SharedTempDir(t), env(a, nil), "backup-push", "--remote", "--dsn", dsn)
	stop()
	name := strings.TrimSpace(r.Stdout)

	dest := filepath.Join(a.Dir, "restored")
	mustRun(t, "", env(a, nil), "backup-fetch", dest, name)
	if _, err := os.Stat(filepath.Join(dest, "standby.signal")); err == nil {
		t.Fatal("the standby's standby.signal was restored: the restore would never finish recovery")
	}
	verifyWithWAL(t, a, dest)
	restored := startRestored(t, a, dest)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("restored from the standby's remote backup: digest %s, want %s", got, want)
	}
}

// verifyWithWAL runs pg_verifybackup on a restored, not yet started data
// directory, with the WAL the backup needs fetched from the archive by
// walnut wal-fetch, so that it also parses the WAL from start to end.
func verifyWithWAL(t *testing.T, a *archive, dest string, args ...string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dest, "backup_manifest"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		WAL []struct {
			Timeline uint32 `json:"Timeline"`
			Start    string `json:"Start-LSN"`
			End      string `json:"End-LSN"`
		} `json:"WAL-Ranges"`
	}
	if err := json.Unmarshal(b, &m); err != nil || len(m.WAL) != 1 {
		t.Fatalf("backup_manifest WAL-Ranges: %v %+v", err, m.WAL)
	}
	walDir := filepath.Join(a.Dir, "verify-wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(walDir); err != nil {
		t.Fatal(err)
	}
	const segSize = 16 << 20
	first, last := parseLSN(t, m.WAL[0].Start)/segSize, (parseLSN(t, m.WAL[0].End)-1)/segSize
	for seg := first; seg <= last; seg++ {
		f := fmt.Sprintf("%08X%08X%08X", m.WAL[0].Timeline, seg/0x100, seg%0x100)
		mustRun(t, "", env(a, nil), "wal-fetch", f, filepath.Join(walDir, f))
	}
	bin, err := testpg.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(dest); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"--wal-directory=" + walDir}, append(args, dest)...)
	out, err := testpg.Command(t.Context(), nil, filepath.Join(bin, "pg_verifybackup"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_verifybackup %s: %v\n%s", dest, err, out)
	}
}

func parseLSN(t *testing.T, s string) uint64 {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("LSN %q", s)
	}
	return h<<32 | l
}

// A stream cut halfway (the walsender terminated) fails the backup with
// one line, and leaves nothing listed and no parts behind.
func TestRemoteBackupStreamCut(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Pgbench(t, "-i", "-s", "5", "-q")
	// Stored slowly, so the stream is still running when it is cut.
	cmd := testpg.Command(t.Context(), env(a, src, "WALNUT_RATE_LIMIT=2MiB", "WALNUT_COMPRESSION=none", "WALNUT_PARTITION_SIZE=1048576"),
		walnutBin, "backup-push", "--remote")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		n := src.QueryString(t, "SELECT count(pg_terminate_backend(pid))::text FROM pg_stat_activity WHERE backend_type = 'walsender' AND query LIKE 'BASE_BACKUP%'")
		if n == "1" {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no walsender for backup-push --remote appeared")
		}
		time.Sleep(100 * time.Millisecond)
	}
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("backup-push --remote succeeded although its stream was cut:\n%s", stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "walnut: backup-push: ") {
		t.Errorf("last line %q does not say what failed", last)
	}
	if m, _ := filepath.Glob(filepath.Join(a.Path, "backups", "*.json")); len(m) != 0 {
		t.Errorf("a sentinel after a cut stream: %v", m)
	}
	if m, _ := filepath.Glob(filepath.Join(a.Path, "backups", "*", "*")); len(m) != 0 {
		t.Errorf("parts of the failed backup left behind: %v", m)
	}
}

// runAsNobody runs walnut as the user nobody, who may traverse the
// cluster's socket directory (made 0711 here) to its socket but cannot
// read the data directory: that is checked first.
func runAsNobody(t *testing.T, c *testpg.Cluster, env []string, args ...string) result {
	t.Helper()
	if err := os.Chmod(c.SocketDir, 0o711); err != nil {
		t.Fatal(err)
	}
	ls := exec.Command("runuser", "-u", "nobody", "--", "ls", c.DataDir)
	if out, err := ls.CombinedOutput(); err == nil {
		t.Fatalf("nobody can list %s; the test would prove nothing:\n%s", c.DataDir, out)
	}
	argv := append([]string{"-u", "nobody", "--", "env", "-i", "PATH=/usr/bin:/bin", "HOME=/nonexistent"}, env...)
	argv = append(append(argv, walnutBin), args...)
	cmd := exec.CommandContext(t.Context(), "runuser", argv...)
	cmd.Dir = "/"
	r := runCommand(t, cmd)
	if r.Code != 0 {
		t.Fatalf("walnut %s as nobody: %s", strings.Join(args, " "), r)
	}
	return r
}

// backup-push --remote against a server that archives nothing itself
// (archive_mode = off): its WAL reaches the archive through walnut
// wal-receive, and the backup waits for it there.
func TestRemoteBackupThroughWALReceive(t *testing.T) {
	a := newArchive(t)
	c := streamingCluster(t, nil)
	p := startReceive(t, env(a, c), a.Dir, "--partial-interval", "1s")
	waitStreaming(t, c, p)
	c.Pgbench(t, "-i", "-s", "2", "-q")
	name := strings.TrimSpace(mustRun(t, testpg.SharedTempDir(t), env(a, c), "backup-push", "--remote").Stdout)

	c.Pgbench(t, "-n", "-c", "2", "-t", "200", "postgres")
	want := c.QueryString(t, tableDigest)
	seg := c.QueryString(t, "SELECT pg_walfile_name(pg_switch_wal())")
	deadline := time.Now().Add(time.Minute)
	for run(t, "", env(a, nil), "wal-fetch", seg, filepath.Join(a.Dir, "probe")).Code != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("wal-receive did not store %s within a minute\n%s", seg, p.output())
		}
		time.Sleep(200 * time.Millisecond)
	}

	dest := filepath.Join(a.Dir, "restored")
	mustRun(t, "", env(a, nil), "backup-fetch", dest, name)
	verifyWithWAL(t, a, dest)
	restored := startRestored(t, a, dest)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("restored from the remote backup with wal-receive's WAL: digest %s, want %s", got, want)
	}
}

// backup-push --remote on the majors before 15, whose BASE_BACKUP takes
// the old option syntax and sends one COPY per archive (then the
// backup_manifest on 13 and 14; 12 has none): a tablespace, a backup under
// load, a point-in-time restore with table digests, pg_verifybackup of
// walnut's own manifest (Debian's 15 reads it for any major; its
// pg_waldump cannot parse older WAL, hence --no-parse-wal).
func TestRemoteBackupOldMajors(t *testing.T) {
	for _, major := range []int{12, 13, 14} {
		t.Run(fmt.Sprintf("PG%d", major), func(t *testing.T) {
			remoteBackupOldMajor(t, major)
		})
	}
}

func remoteBackupOldMajor(t *testing.T, major int) {
	a := newArchive(t)
	src := archivingClusterOpts(t, a, testpg.Options{Major: major})
	if v := src.QueryString(t, "SELECT current_setting('server_version_num')::int / 10000"); v != strconv.Itoa(major) {
		t.Fatalf("asked for PostgreSQL %d, server is %s", major, v)
	}
	tsDir := createTablespace(t, src, filepath.Join(a.Dir, "ts1"), "ts1")
	src.Pgbench(t, "-i", "-s", "1", "-q")
	src.Exec(t, "CREATE TABLE in_ts TABLESPACE ts1 AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	load := src.Command(ctx, nil, src.PgbenchPath(t), "-n", "-c", "2", "-T", "30", "postgres")
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	push := mustRun(t, testpg.SharedTempDir(t), env(a, src, "WALNUT_PARTITION_SIZE=4194304"), "backup-push", "--remote")
	cancel()
	load.Wait()
	name := strings.TrimSpace(push.Stdout)
	if !strings.HasPrefix(name, "base_00000001") {
		t.Fatalf("backup name %q\n%s", name, push)
	}
	kept, _ := filepath.Glob(filepath.Join(a.Path, "backups", name, "server_backup_manifest*"))
	noManifest := strings.Contains(push.Stderr, "sends no backup_manifest")
	if major == 12 && (len(kept) != 0 || !noManifest) {
		t.Errorf("PG 12: want no server manifest kept (%v) and the log to say so\n%s", kept, push.Stderr)
	}
	if major > 12 && (len(kept) != 1 || noManifest) {
		t.Errorf("PG %d: the server's backup_manifest was not kept (%v)\n%s", major, kept, push.Stderr)
	}
	mustRun(t, "", env(a, nil), "backup-verify", name)

	src.Pgbench(t, "-n", "-c", "2", "-t", "100", "postgres")
	src.Exec(t, "INSERT INTO in_ts SELECT g, 'after' FROM generate_series(20001, 20100) g")
	const tsDigest = "SELECT count(*) || '/' || md5(string_agg(v, ',' ORDER BY id)) FROM in_ts"
	want, wantTS := src.QueryString(t, tableDigest), src.QueryString(t, tsDigest)
	time.Sleep(1100 * time.Millisecond)
	target := src.QueryString(t, "SELECT now()::text")
	time.Sleep(1100 * time.Millisecond)
	src.Exec(t, "DROP TABLE pgbench_accounts")
	src.Exec(t, "DELETE FROM in_ts")
	switchAndWaitArchived(t, src)

	dest := filepath.Join(a.Dir, "restored")
	mustRun(t, "", env(a, nil), "backup-fetch", dest, name, "--tablespace-mapping", tsDir+"="+filepath.Join(a.Dir, "ts1-restored"),
		"--recovery-target-time", target, "--recovery-target-action", "promote")
	verifyBackup(t, dest, "--ignore=tablespace_map")
	restored := startRestored(t, a, dest)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("PG %d restored from the remote backup: digest %s, want %s", major, got, want)
	}
	if got := restored.QueryString(t, tsDigest); got != wantTS {
		t.Fatalf("PG %d restored tablespace table %s, want %s", major, got, wantTS)
	}
}
