package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	core "github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/storage"
)

// runAsRoot runs walnut as this process's user (root in CI), as a cron
// job of root would, with exactly env and PATH.
func runAsRoot(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, walnutBin, args...)
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	cmd.Dir = os.TempDir()
	return runCommand(t, cmd)
}

// flipByte changes one byte in the middle of the stored object key, and
// returns how to put the original back.
func flipByte(t *testing.T, s storage.Store, key string) func() {
	t.Helper()
	orig := readObject(t, s, key)
	b := bytes.Clone(orig)
	b[len(b)/2] ^= 0x20
	putObject(t, s, key, b)
	return func() { putObject(t, s, key, orig) }
}

func readObject(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func putObject(t *testing.T, s storage.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

// processesUsing lists the processes whose command line mentions path: a
// server left running on a scratch directory shows its data directory
// there.
func processesUsing(t *testing.T, path string) []string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if cmd := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})); strings.Contains(cmd, path) {
			out = append(out, filepath.Base(filepath.Dir(p))+": "+cmd)
		}
	}
	return out
}

// assertDrillCleanedUp fails if the scratch directory or any process on
// it outlived the drill.
func assertDrillCleanedUp(t *testing.T, scratch string) {
	t.Helper()
	if scratch == "" {
		t.Fatal("the drill named no scratch directory")
	}
	if _, err := os.Stat(scratch); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scratch directory %s left behind (%v)", scratch, err)
	}
	if ps := processesUsing(t, scratch); len(ps) > 0 {
		t.Errorf("processes left running on %s:\n%s", scratch, strings.Join(ps, "\n"))
	}
}

// killDrillWhileStarting runs the drill as root and sends it SIGTERM once
// it has started the server.
func killDrillWhileStarting(t *testing.T, env []string, scratch, name string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), walnutBin, "backup-verify", "--restore", "--scratch", scratch, name)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	sc := bufio.NewScanner(io.TeeReader(stderr, &log))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "starting a throwaway server") {
			cmd.Process.Signal(syscall.SIGTERM)
			break
		}
	}
	io.Copy(io.Discard, stderr)
	err = cmd.Wait()
	if err == nil || !strings.Contains(stdout.String(), "cleanup: server stopped, scratch directory removed") {
		t.Errorf("drill stopped by SIGTERM: %v\nstdout: %s\nstderr: %s", err, stdout.String(), log.String())
	}
}

type drillJSON struct {
	Backup            string  `json:"backup"`
	Scratch           string  `json:"scratch"`
	Files             int     `json:"files"`
	Bytes             int64   `json:"bytes"`
	RestoreSeconds    float64 `json:"restore_seconds"`
	ConsistentSeconds float64 `json:"consistent_seconds"`
	ConsistentLSN     string  `json:"consistent_lsn"`
	OK                bool    `json:"ok"`
	Error             string  `json:"error"`
	OSUser            string  `json:"os_user"`
	Timeline          uint32  `json:"timeline"`
	Databases         []struct {
		Name      string `json:"name"`
		SizeBytes int64  `json:"size_bytes"`
		Tables    []struct {
			Table string `json:"table"`
			Rows  int64  `json:"rows"`
		} `json:"tables"`
	} `json:"databases"`
}

func parseDrill(t *testing.T, r result) drillJSON {
	t.Helper()
	var d drillJSON
	if err := json.Unmarshal([]byte(r.Stdout), &d); err != nil {
		t.Fatalf("drill --json: %v\n%s", err, r)
	}
	return d
}

// rowsOf returns the row count the drill reported for table in database db.
func rowsOf(d drillJSON, db, table string) (int64, bool) {
	for _, x := range d.Databases {
		if x.Name != db {
			continue
		}
		for _, tb := range x.Tables {
			if tb.Table == table {
				return tb.Rows, true
			}
		}
	}
	return 0, false
}

// verifyScenario is a cluster archiving into a, a tablespace, a pgbench
// database and one backup, with WAL archived after it.
type verifyScenario struct {
	a     *archive
	src   *testpg.Cluster
	store storage.Store
	sn    *core.Sentinel
	ts    string // the tablespace's location
}

func newVerifyScenario(t *testing.T, a *archive) *verifyScenario {
	// wal_keep_size keeps the segments of the backup in pg_wal, so that
	// --push-missing finds them there.
	src := archivingCluster(t, a, map[string]string{"wal_keep_size": "1GB"})
	ts := filepath.Join(testpg.SharedTempDir(t), "ts")
	if err := os.Mkdir(ts, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(ts); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, "CREATE TABLESPACE extra LOCATION '"+ts+"'")
	src.Exec(t, "CREATE TABLE in_extra (i int) TABLESPACE extra; INSERT INTO in_extra SELECT generate_series(1, 1234)")
	src.Pgbench(t, "-i", "-s", "1", "-q")
	name := strings.TrimSpace(mustRun(t, "", env(a, src), "backup-push", src.DataDir).Stdout)
	// Written after the backup: the drill recovers to the backup's
	// consistency point and must not see these rows.
	src.Exec(t, "INSERT INTO in_extra SELECT generate_series(1, 100)")
	switchAndWaitArchived(t, src)
	s := openArchive(t, a)
	sn, err := core.ReadSentinel(t.Context(), s, name)
	if err != nil {
		t.Fatal(err)
	}
	return &verifyScenario{a: a, src: src, store: s, sn: sn, ts: ts}
}

// walKeyOf is the key of the archived WAL file name.
func (v *verifyScenario) walKeyOf(t *testing.T, name string) string {
	t.Helper()
	o, err := core.FindWAL(t.Context(), v.store, name)
	if err != nil {
		t.Fatal(err)
	}
	return o.Key
}

// backup-verify, wal-verify and the drill on one archive, against one
// cluster: a good archive passes; one flipped byte in each kind of object
// is found and named; a deleted segment inside the backup's range is
// found by both verifies and fails the drill cleanly; --push-missing fills
// it from pg_wal; and after a promotion wal-verify follows the new
// timeline.
func TestVerify(t *testing.T) {
	forEachArchive(t, func(t *testing.T, a *archive) {
		v := newVerifyScenario(t, a)
		sn := v.sn
		cfg := env(a, nil)
		if a.Envdir != "" {
			cfg = nil // everything from the envdir, as an operator's cron job
		}
		walnut := func(args ...string) []string {
			if a.Envdir != "" {
				return append([]string{"--envdir", a.Envdir}, args...)
			}
			return args
		}

		t.Run("good", func(t *testing.T) {
			r := mustRun(t, "", cfg, walnut("backup-verify", "LATEST")...)
			if !strings.Contains(r.Stdout, "ok   "+sn.Name+": ") || strings.Contains(r.Stdout, "FAIL") {
				t.Errorf("backup-verify LATEST:\n%s", r)
			}
			var rep struct {
				OK      bool `json:"ok"`
				Backups []struct {
					Name        string `json:"name"`
					Files       int    `json:"files"`
					WALSegments int    `json:"wal_segments"`
				} `json:"backups"`
			}
			r = mustRun(t, "", cfg, walnut("backup-verify", "--all", "--json")...)
			if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil || !rep.OK || len(rep.Backups) != 1 || rep.Backups[0].Files < 900 || rep.Backups[0].WALSegments < 1 {
				t.Errorf("backup-verify --all --json: %+v (%v)\n%s", rep, err, r)
			}
			r = mustRun(t, "", cfg, walnut("wal-verify")...)
			if !strings.Contains(r.Stdout, "ok: no gaps") || !strings.Contains(r.Stdout, "backup "+sn.Name+": restorable to") {
				t.Errorf("wal-verify:\n%s", r)
			}
		})

		t.Run("flipped bytes", func(t *testing.T) {
			ext := core.BackupExt(sn)
			for _, key := range []string{
				core.PartitionKey(sn.Name, 1, ext),
				sn.ControlKey,
				sn.ManifestKey,
				sn.PGManifestKey,
				v.walKeyOf(t, sn.StopSegment),
			} {
				undo := flipByte(t, v.store, key)
				r := run(t, "", cfg, walnut("backup-verify", sn.Name)...)
				undo()
				if r.Code != 1 || !strings.Contains(r.Stdout, "FAIL "+key+":") {
					t.Errorf("one byte flipped in %s: want exit 1 and a line naming it, got %s", key, r)
				}
			}
		})

		t.Run("drill", func(t *testing.T) {
			var r result
			if a.Envdir == "" {
				// As root, from cron: the server runs as postgres.
				r = runAsRoot(t, cfg, "backup-verify", "--restore", "--json", "LATEST")
			} else {
				r = run(t, "", cfg, walnut("backup-verify", "--restore", "--json", "LATEST")...)
			}
			d := parseDrill(t, r)
			if r.Code != 0 || !d.OK || d.Backup != sn.Name || d.OSUser != "postgres" || d.Timeline != sn.Timeline+1 {
				t.Fatalf("drill: %+v\n%s", d, r)
			}
			// The report's times and sizes are measured, not left at zero.
			if d.RestoreSeconds <= 0 || d.ConsistentSeconds <= 0 || d.Files <= 0 || d.Bytes <= 0 || d.ConsistentLSN == "" {
				t.Errorf("drill report: restore %vs, consistent %vs at %q, %d files, %d bytes", d.RestoreSeconds, d.ConsistentSeconds, d.ConsistentLSN, d.Files, d.Bytes)
			}
			for _, db := range d.Databases {
				// pgbench's 100,000 accounts alone take some 13 MB.
				if db.SizeBytes <= 0 || (db.Name == "postgres" && db.SizeBytes < 10<<20) {
					t.Errorf("drill: database %s size %d bytes", db.Name, db.SizeBytes)
				}
			}
			for table, want := range map[string]int64{"public.pgbench_accounts": 100000, "public.pgbench_branches": 1,
				"public.pgbench_tellers": 10, "public.pgbench_history": 0, "public.in_extra": 1234} {
				if got, ok := rowsOf(d, "postgres", table); !ok || got != want {
					t.Errorf("drill counted %d rows of %s (listed: %v), want %d as at the backup's end", got, table, ok, want)
				}
			}
			assertDrillCleanedUp(t, d.Scratch)

			if a.Envdir == "" {
				// As postgres, into a scratch directory of its own, with a
				// query of the operator's.
				scratch := filepath.Join(testpg.SharedTempDir(t), "drill")
				r = mustRun(t, "", cfg, "backup-verify", "--restore", "--scratch", scratch, "--database", "postgres",
					"--query", "SELECT count(*), sum(abalance) FROM pgbench_accounts", sn.Name)
				if !strings.Contains(r.Stdout, "database postgres: ") || !strings.Contains(r.Stdout, "  count | sum\n  100000 | 0\n") || !strings.Contains(r.Stdout, "drill ok") {
					t.Errorf("drill with --query:\n%s", r)
				}
				assertDrillCleanedUp(t, scratch)

				// As root into an operator's empty directory: the server
				// runs as the directory's owner, and the directory is
				// left, emptied. One that root owns is refused up front.
				scratch = filepath.Join(testpg.SharedTempDir(t), "owned")
				if err := os.Mkdir(scratch, 0o700); err != nil {
					t.Fatal(err)
				}
				if r := runAsRoot(t, cfg, "backup-verify", "--restore", "--scratch", scratch, "LATEST"); r.Code == 0 ||
					!strings.Contains(r.Stderr, "belongs to root") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
					t.Errorf("drill as root into root's directory: want a non-zero exit and one line naming the owner, got %s", r)
				}
				if err := testpg.ChownToServer(scratch); err != nil {
					t.Fatal(err)
				}
				r = runAsRoot(t, cfg, "backup-verify", "--restore", "--json", "--scratch", scratch, "LATEST")
				if d := parseDrill(t, r); r.Code != 0 || !d.OK || d.OSUser != "postgres" {
					t.Errorf("drill as root into postgres's directory: %+v\n%s", d, r)
				}
				if es, err := os.ReadDir(scratch); err != nil || len(es) != 0 {
					t.Errorf("the operator's scratch directory after the drill: %d entries, %v", len(es), err)
				}
				if ps := processesUsing(t, scratch); len(ps) > 0 {
					t.Errorf("processes left running on %s:\n%s", scratch, strings.Join(ps, "\n"))
				}

				// Stopped by cron's timeout or an operator while the
				// server recovers: it stops the server and cleans up.
				scratch = filepath.Join(testpg.SharedTempDir(t), "drill")
				killDrillWhileStarting(t, cfg, scratch, sn.Name)
				assertDrillCleanedUp(t, scratch)
			}
		})

		t.Run("deleted segment", func(t *testing.T) {
			seg := sn.StopSegment
			key := v.walKeyOf(t, seg)
			if err := v.store.Delete(t.Context(), key); err != nil {
				t.Fatal(err)
			}
			r := run(t, "", cfg, walnut("backup-verify", sn.Name)...)
			if r.Code != 1 || !strings.Contains(r.Stdout, "FAIL wal/"+seg+"-*: missing from the archive") {
				t.Errorf("backup-verify after deleting %s: %s", key, r)
			}
			r = run(t, "", cfg, walnut("wal-verify")...)
			if r.Code != 1 || !strings.Contains(r.Stdout, "FAIL "+seg+": missing from the archive") {
				t.Errorf("wal-verify after deleting %s: %s", key, r)
			}

			scratch := filepath.Join(testpg.SharedTempDir(t), "drill")
			r = run(t, "", cfg, walnut("backup-verify", "--restore", "--scratch", scratch, sn.Name)...)
			if r.Code != 1 || !strings.Contains(r.Stdout, "drill FAIL") || !strings.Contains(r.Stdout, "cleanup: server stopped, scratch directory removed") {
				t.Errorf("drill without %s: want it to fail and clean up, got %s", seg, r)
			}
			assertDrillCleanedUp(t, scratch)

			r = mustRun(t, "", cfg, walnut("wal-verify", "--push-missing", v.src.DataDir)...)
			if !strings.Contains(r.Stdout, "pushed "+seg) || !strings.Contains(r.Stdout, "ok: no gaps") {
				t.Errorf("wal-verify --push-missing: %s", r)
			}
			mustRun(t, "", cfg, walnut("backup-verify", sn.Name)...)
		})

		t.Run("promotion", func(t *testing.T) {
			// The source stops; a restore of its backup recovers to the
			// end of the archive, promotes to timeline 2 and archives into
			// the same archive, as after a failover.
			v.src.Stop(t)
			dir := testpg.SharedTempDir(t)
			dest := filepath.Join(dir, "promoted")
			mustRun(t, "", cfg, walnut("backup-fetch", dest, "LATEST", "--tablespace-mapping", v.ts+"="+filepath.Join(dir, "ts"))...)
			promoted := testpg.Start(t, dest, restoreOpts(a))
			promoted.WaitReady(t, 5*time.Minute)
			promoted.Exec(t, "INSERT INTO in_extra SELECT generate_series(1, 10)")
			switchAndWaitArchived(t, promoted)
			tli, _ := strconv.Atoi(promoted.QueryString(t, "SELECT timeline_id FROM pg_control_checkpoint()"))
			var rep struct {
				OK       bool     `json:"ok"`
				Timeline uint32   `json:"timeline"`
				Newest   string   `json:"newest"`
				Missing  []string `json:"missing"`
			}
			r := mustRun(t, "", cfg, walnut("wal-verify", "--json")...)
			if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil || !rep.OK || int(rep.Timeline) != tli || tli < 2 ||
				!strings.HasPrefix(rep.Newest, fmt.Sprintf("%08X", tli)) || len(rep.Missing) != 0 {
				t.Errorf("wal-verify after the promotion to timeline %d: %+v (%v)\n%s", tli, rep, err, r)
			}
			if !strings.Contains(mustRun(t, "", cfg, walnut("wal-verify")...).Stdout, fmt.Sprintf("then timeline %d from", tli)) {
				t.Errorf("wal-verify does not show the path through timeline %d", tli)
			}
		})
	})
}

// walnut check on a correct setup passes; archive_command pointing at
// another prefix, archive_command = /bin/false and an unreachable store
// each fail, naming the check that failed.
func TestCheck(t *testing.T) {
	forEachArchive(t, func(t *testing.T, a *archive) {
		src := archivingCluster(t, a, nil)
		cfg := env(a, src)
		var global []string
		if a.Envdir != "" {
			global = []string{"--envdir", a.Envdir}
		}
		check := func(t *testing.T, env []string, args ...string) result {
			t.Helper()
			return run(t, "", env, append(append(append([]string{}, global...), "check"), args...)...)
		}
		line := func(r result, status, name string) string {
			for _, l := range strings.Split(r.Stdout, "\n") {
				f := strings.Fields(l)
				if len(f) >= 2 && f[0] == status && f[1] == name {
					return l
				}
			}
			return ""
		}
		setArchiveCommand := func(t *testing.T, cmd string) {
			t.Helper()
			if cmd == "" {
				src.Exec(t, "ALTER SYSTEM RESET archive_command")
			} else {
				src.Exec(t, "ALTER SYSTEM SET archive_command = '"+strings.ReplaceAll(cmd, "'", "''")+"'")
			}
			src.Exec(t, "SELECT pg_reload_conf()")
			// The archiver rereads its settings when signalled.
			time.Sleep(300 * time.Millisecond)
		}

		t.Run("passes", func(t *testing.T) {
			r := check(t, cfg, src.DataDir)
			if r.Code != 0 || strings.Contains(r.Stdout, "FAIL") {
				t.Fatalf("check on a correct setup: %s", r)
			}
			for _, name := range []string{"store", "clock", "server", "archive_mode", "wal_level", "archive_command", "round", "archiver", "walnut.json", "secrets"} {
				if line(r, "ok", name) == "" {
					t.Errorf("no ok line for %s:\n%s", name, r.Stdout)
				}
			}
			var rep struct {
				OK     bool `json:"ok"`
				Checks []struct {
					Name, Status string
				} `json:"checks"`
			}
			r = check(t, cfg, "--json")
			if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil || !rep.OK || r.Code != 0 || len(rep.Checks) < 10 {
				t.Errorf("check --json: %+v (%v)\n%s", rep, err, r)
			}
		})

		t.Run("another prefix", func(t *testing.T) {
			other := a.Prefix + "-other"
			if a.Path != "" {
				other = "file://" + filepath.Join(a.Dir, "other")
			}
			setArchiveCommand(t, walnutBin+" "+strings.Join(global, " ")+" --prefix "+other+" wal-push %p")
			defer setArchiveCommand(t, "")
			r := check(t, cfg, "--timeout", "3s")
			if r.Code != 1 || !strings.Contains(line(r, "FAIL", "archive_command"), "archives to "+other) ||
				!strings.Contains(line(r, "FAIL", "round"), "stored it somewhere else") {
				t.Errorf("archive_command into %s: %s", other, r)
			}
		})

		t.Run("bin false", func(t *testing.T) {
			setArchiveCommand(t, "/bin/false")
			defer setArchiveCommand(t, "")
			r := check(t, cfg, "--timeout", "3s")
			if r.Code != 1 || !strings.Contains(line(r, "FAIL", "archive_command"), "does not run walnut wal-push") ||
				line(r, "FAIL", "round") == "" || line(r, "FAIL", "archiver") == "" {
				t.Errorf("archive_command = /bin/false: %s", r)
			}
		})

		t.Run("unreachable store", func(t *testing.T) {
			env := cfg
			args := []string{"--timeout", "3s"}
			if a.Envdir != "" {
				// The process environment, not the envdir, with the
				// endpoint on a port nobody listens on.
				global = nil
				defer func() { global = []string{"--envdir", a.Envdir} }()
				env = append(append(append([]string{"WALNUT_PREFIX=" + a.Prefix}, a.Env...), src.Env()...), "AWS_ENDPOINT_URL=http://127.0.0.1:1")
			} else {
				blocker := filepath.Join(a.Dir, "a-file")
				if err := os.WriteFile(blocker, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				testpg.ChownToServer(blocker)
				env = append(env, "WALNUT_PREFIX=file://"+blocker+"/archive")
			}
			start := time.Now()
			r := check(t, env, args...)
			if r.Code != 1 || line(r, "FAIL", "store") == "" || line(r, "FAIL", "walnut.json") == "" {
				t.Errorf("unreachable store: %s", r)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("check took %s against an unreachable store with --timeout 3s", d)
			}
		})
	})
}
