package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// walnutBin is the walnut binary under test, built by TestMain into a
// directory the server user can execute from.
var walnutBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "walnut-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := os.Chmod(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		walnutBin = filepath.Join(dir, "walnut")
		build := exec.Command("go", "build", "-o", walnutBin, "..")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build walnut: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// archive is a file:// prefix in a directory the server user owns, or
// an object store prefix (see newS3Archive).
type archive struct {
	Dir    string // the whole test directory
	Path   string // the archive itself, for file:// prefixes
	Prefix string
	// Env holds the store's settings and credentials, for walnut commands
	// the tests run; Envdir holds them too, with the prefix, for the
	// commands PostgreSQL runs, as an operator would set them up.
	Env    []string
	Envdir string
}

func newArchive(t *testing.T) *archive {
	dir := testpg.SharedTempDir(t)
	p := filepath.Join(dir, "archive")
	return &archive{Dir: dir, Path: p, Prefix: "file://" + p}
}

// archivingCluster starts a cluster whose archive_command is walnut
// wal-push into a.
func archivingCluster(t *testing.T, a *archive, extraConf map[string]string) *testpg.Cluster {
	return archivingClusterOpts(t, a, testpg.Options{Conf: extraConf})
}

// archivingClusterOpts is archivingCluster with more choices: initdb
// arguments, the server's major version, settings on top of archiving's.
func archivingClusterOpts(t *testing.T, a *archive, opts testpg.Options) *testpg.Cluster {
	walnut := walnutBin
	if a.Envdir != "" {
		walnut += " --envdir " + a.Envdir
	}
	conf := map[string]string{
		"archive_mode":    "on",
		"archive_command": walnut + " wal-push %p",
		"archive_timeout": "0",
	}
	for k, v := range opts.Conf {
		conf[k] = v
	}
	opts.Conf = conf
	opts.Env = append([]string{"WALNUT_PREFIX=" + a.Prefix}, opts.Env...)
	return testpg.New(t, opts)
}

// result is one walnut run.
type result struct {
	Stdout, Stderr string
	Code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
}

// run runs walnut as the server user (as PostgreSQL and the operator's cron
// would) in dir (os.TempDir() if empty) with env.
func run(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := testpg.Command(ctx, env, walnutBin, args...)
	if dir != "" {
		cmd.Dir = dir
	}
	return runCommand(t, cmd)
}

// runCommand runs cmd to its end and returns its output and exit code; a
// command that cannot be run at all fails the test.
func runCommand(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	return r
}

// mustRun runs walnut and fails the test unless it exits 0.
func mustRun(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	r := run(t, dir, env, args...)
	if r.Code != 0 {
		t.Fatalf("walnut %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// env returns the environment for walnut commands against a and c.
func env(a *archive, c *testpg.Cluster, extra ...string) []string {
	e := append([]string{"WALNUT_PREFIX=" + a.Prefix}, a.Env...)
	if c != nil {
		e = append(e, c.Env()...)
	}
	return append(e, extra...)
}

// switchAndWaitArchived forces a segment switch and waits until the
// archiver has stored it, so everything written so far is in the archive.
func switchAndWaitArchived(t *testing.T, c *testpg.Cluster) {
	t.Helper()
	seg := c.QueryString(t, "SELECT pg_walfile_name(pg_switch_wal())")
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		// After a backup the last file archived may be a .backup file,
		// named after the backup's start segment, which can be far older
		// than seg when the backup ran long: so also look for seg's .done.
		done := c.QueryString(t, "SELECT coalesce(left(last_archived_wal, 24), '') FROM pg_stat_archiver")
		if done >= seg && len(done) == len(seg) {
			return
		}
		if c.QueryString(t, "SELECT ((pg_stat_file('pg_wal/archive_status/"+seg+".done', true)).size IS NOT NULL)::text") == "true" {
			return
		}
		if failed := c.QueryString(t, "SELECT coalesce(last_failed_wal, '') FROM pg_stat_archiver"); failed == seg {
			t.Logf("archiving %s failed once; waiting for a retry\n%s", seg, c.LogTail(20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("segment %s not archived within 2 minutes\n%s", seg, c.LogTail(40))
}

// tableDigest is a checksum over every row of the pgbench tables, to compare
// a restored cluster with its source.
const tableDigest = `SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
	SELECT 'a' || aid || ':' || abalance AS x FROM pgbench_accounts
	UNION ALL SELECT 'b' || bid || ':' || bbalance FROM pgbench_branches
	UNION ALL SELECT 't' || tid || ':' || tbalance FROM pgbench_tellers
	UNION ALL SELECT 'h' || count(*) || ':' || coalesce(sum(delta), 0) FROM pgbench_history) s`

// restoreEnv is what a restored server needs to run walnut wal-fetch.
func restoreOpts(a *archive) testpg.Options {
	return testpg.Options{Env: append([]string{"WALNUT_PREFIX=" + a.Prefix}, a.Env...)}
}

// startRestored starts a data directory restored by backup-fetch and waits
// until recovery has finished and it is promoted. It does not archive: a
// promoted restore adds a timeline to the archive, which a later restore
// in the same test would follow (recovery_target_timeline 'latest') past
// its own target.
func startRestored(t *testing.T, a *archive, dest string) *testpg.Cluster {
	t.Helper()
	opts := restoreOpts(a)
	opts.Conf = map[string]string{"archive_mode": "off"}
	c := testpg.Start(t, dest, opts)
	c.WaitReady(t, 5*time.Minute)
	return c
}

// createTablespace makes dir, the server's, and tablespace name in it.
func createTablespace(t *testing.T, c *testpg.Cluster, dir, name string) string {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(dir); err != nil {
		t.Fatal(err)
	}
	c.Exec(t, "CREATE TABLESPACE "+name+" LOCATION '"+dir+"'")
	return dir
}
