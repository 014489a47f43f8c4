package testpg

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options shape a cluster started by New or Start.
type Options struct {
	// Conf adds server settings, e.g. "archive_command": "walnut wal-push
	// %p". New appends them to postgresql.conf, quoted unless they already
	// start with a single quote. Start passes them on the command line
	// (-c), unquoted, leaving the restored postgresql.conf as it is.
	Conf map[string]string
	// Env is extra environment for the server process; archive_command and
	// restore_command inherit it.
	Env []string
	// InitdbArgs are appended to initdb's arguments (New only), e.g.
	// "--data-checksums".
	InitdbArgs []string
	// Major picks the server's PostgreSQL major version (MajorBinDir): 0
	// is BinDir's, the default server. Start defaults to the data
	// directory's own major (its PG_VERSION). Client tools (pgbench, psql)
	// are BinDir's whatever the server.
	Major int
}

// Cluster is a running (or stopped) test server.
type Cluster struct {
	DataDir   string
	SocketDir string
	BinDir    string // the server's postgres, initdb and pg_ctl
	Port      int
	// LogFile receives the server's log (pg_ctl -l).
	LogFile string

	env []string
	// portOpts are the -o options for pg_ctl: Start overrides port and
	// socket on the command line so a restored postgresql.conf stays as
	// restored.
	portOpts string
}

const (
	startTimeout = 2 * time.Minute
	// Recovery from the archive can replay many segments before pg_ctl
	// sees the server accept connections.
	recoveryStartTimeout = 10 * time.Minute
	stopTimeout          = 2 * time.Minute
	logTailLines         = 60
)

// New creates a cluster with initdb in a SharedTempDir and starts it. The
// server listens only on a unix socket in its own directory; durability
// settings keep their defaults because tests check what survives a crash.
// It is stopped (immediate mode) when the test ends.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	bin := serverBinDir(t, opts.Major)

	dir := SharedTempDir(t)
	data := filepath.Join(dir, "data")
	c := &Cluster{
		DataDir:   data,
		SocketDir: dir,
		BinDir:    bin,
		Port:      freePort(t),
		LogFile:   filepath.Join(data, "server.log"),
		env:       append([]string(nil), opts.Env...),
	}
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()

	// --no-sync only skips initdb's final fsync; the server itself runs
	// with fsync on.
	args := []string{"-D", data, "--auth=trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"}
	args = append(args, opts.InitdbArgs...)
	if _, err := run(Command(ctx, nil, filepath.Join(bin, "initdb"), args...)); err != nil {
		t.Fatalf("initdb: %v", err)
	}
	if err := c.writeConf(opts.Conf); err != nil {
		t.Fatal(err)
	}
	c.registerCleanup(t)
	if err := c.start(ctx, startTimeout); err != nil {
		t.Fatalf("start cluster in %s: %v\n%s", data, err, c.LogTail(logTailLines))
	}
	return c
}

// Start starts an existing data directory, e.g. one restored by
// backup-fetch, on a fresh port and socket directory, and fails the test if
// it does not start. The data directory must be reachable by the server
// user (under a SharedTempDir); when running as root it is chowned to that
// user first.
func Start(t testing.TB, dataDir string, opts Options) *Cluster {
	t.Helper()
	c, err := StartErr(t, dataDir, opts)
	if err != nil {
		t.Fatalf("%v\n%s", err, c.LogTail(logTailLines))
	}
	return c
}

// StartErr is Start that returns the failure instead, for tests that expect
// the server not to come up (a recovery that cannot fetch WAL must stop, not
// promote). The returned Cluster is usable either way: LogTail, Running.
// Only infrastructure problems fail the test.
func StartErr(t testing.TB, dataDir string, opts Options) (*Cluster, error) {
	t.Helper()
	major := opts.Major
	if major == 0 {
		// A restore of another major's backup needs that major's server.
		if m, err := dataDirMajor(dataDir); err == nil && m != DefaultMajor {
			major = m
		}
	}
	bin := serverBinDir(t, major)

	sock := SharedTempDir(t)
	c := &Cluster{
		DataDir:   dataDir,
		SocketDir: sock,
		BinDir:    bin,
		Port:      freePort(t),
		LogFile:   filepath.Join(dataDir, "server.log"),
		env:       append([]string(nil), opts.Env...),
	}
	c.portOpts = startOpts(c.Port, sock, opts.Conf)
	if err := ChownToServer(dataDir); err != nil {
		t.Fatalf("start %s: %v", dataDir, err)
	}
	c.registerCleanup(t)
	ctx, cancel := context.WithTimeout(t.Context(), recoveryStartTimeout+time.Minute)
	defer cancel()
	if err := c.start(ctx, recoveryStartTimeout); err != nil {
		return c, fmt.Errorf("start cluster in %s: %w", dataDir, err)
	}
	return c, nil
}

// serverBinDir finds the server for major (0: the default one), or skips
// or fails the test as Require does. A missing major is the dependency
// "postgresNN", so WALNUT_TEST_REQUIRE=postgres18 requires just that one.
func serverBinDir(t testing.TB, major int) string {
	t.Helper()
	Require(t, "postgres", CheckServerUser())
	if major == 0 {
		bin, err := BinDir()
		Require(t, "postgres", err)
		return bin
	}
	bin, err := MajorBinDir(major)
	Require(t, "postgres"+strconv.Itoa(major), err)
	return bin
}

func (c *Cluster) start(ctx context.Context, timeout time.Duration) error {
	args := []string{"-D", c.DataDir, "-l", c.LogFile, "-w", "-t", strconv.Itoa(int(timeout.Seconds()))}
	if c.portOpts != "" {
		args = append(args, "-o", c.portOpts)
	}
	args = append(args, "start")
	_, err := run(Command(ctx, c.env, filepath.Join(c.BinDir, "pg_ctl"), args...))
	return err
}

// registerCleanup stops the server when the test ends and, if the test
// failed, shows why the server may have misbehaved. Cleanups run last in
// first out, so the log is printed before SharedTempDir removes it.
func (c *Cluster) registerCleanup(t testing.TB) {
	t.Cleanup(func() {
		// New and a later Start on the same data directory share one log;
		// show it once.
		if _, seen := printedLogs.LoadOrStore(printedLog{t, c.LogFile}, true); seen {
			return
		}
		if t.Failed() {
			t.Logf("last %d lines of %s:\n%s", logTailLines, c.LogFile, c.LogTail(logTailLines))
		}
	})
	t.Cleanup(func() {
		if !c.Running() {
			return
		}
		if err := c.pgctlStop(context.Background(), "immediate"); err != nil {
			t.Errorf("stop cluster in %s: %v", c.DataDir, err)
		}
	})
}

type printedLog struct {
	t    testing.TB
	path string
}

var printedLogs sync.Map

func (c *Cluster) pgctlStop(ctx context.Context, mode string) error {
	ctx, cancel := context.WithTimeout(ctx, stopTimeout+time.Minute)
	defer cancel()
	_, err := run(Command(ctx, nil, filepath.Join(c.BinDir, "pg_ctl"),
		"-D", c.DataDir, "-m", mode, "-w", "-t", strconv.Itoa(int(stopTimeout.Seconds())), "stop"))
	return err
}

// Stop shuts the server down cleanly (fast mode: a shutdown checkpoint,
// sessions cancelled) and fails the test if it cannot.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if err := c.pgctlStop(t.Context(), "fast"); err != nil {
		t.Fatalf("stop cluster in %s: %v\n%s", c.DataDir, err, c.LogTail(logTailLines))
	}
}

// Kill stops the server in immediate mode, as a crash would: no shutdown
// checkpoint, crash recovery at the next start.
func (c *Cluster) Kill(t testing.TB) {
	t.Helper()
	if err := c.pgctlStop(t.Context(), "immediate"); err != nil {
		t.Fatalf("stop cluster in %s: %v\n%s", c.DataDir, err, c.LogTail(logTailLines))
	}
}

// Running reports whether postmaster.pid names a live postmaster. The
// postmaster removes the file whenever it exits, even when recovery fails.
func (c *Cluster) Running() bool {
	b, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	// An exited postmaster nobody has reaped yet (a container's init may
	// never reap) still answers kill(pid, 0).
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
			return false
		}
	}
	return true
}

// WaitStopped waits until the server has exited, e.g. after a failed
// recovery, and fails the test if it is still running after timeout.
func (c *Cluster) WaitStopped(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for c.Running() {
		if time.Now().After(deadline) {
			t.Fatalf("server in %s still running after %s\n%s", c.DataDir, timeout, c.LogTail(logTailLines))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Env returns the libpq variables that reach this server.
func (c *Cluster) Env() []string {
	return []string{
		"PGHOST=" + c.SocketDir,
		"PGPORT=" + strconv.Itoa(c.Port),
		"PGUSER=postgres",
		"PGDATABASE=postgres",
	}
}

// Command prepares name to run as the database host would: as the server
// user, with Env(), the Options.Env the cluster was started with, and then
// env (later entries win).
func (c *Cluster) Command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	full := slices.Concat(c.Env(), c.env, env)
	return Command(ctx, full, name, args...)
}

// Pgbench runs pgbench against this cluster as the server user, e.g.
// Pgbench(t, "-i", "-s", "1") or Pgbench(t, "-T", "5", "-c", "2").
func (c *Cluster) Pgbench(t testing.TB, args ...string) {
	t.Helper()
	if _, err := run(Command(t.Context(), c.Env(), c.PgbenchPath(t), args...)); err != nil {
		t.Fatalf("pgbench: %v", err)
	}
}

// PgbenchPath is the pgbench to run against this cluster: the default
// installation's, which talks to servers of every major (the other majors'
// servers come without client tools).
func (c *Cluster) PgbenchPath(t testing.TB) string {
	t.Helper()
	bin, err := BinDir()
	Require(t, "postgres", err)
	return filepath.Join(bin, "pgbench")
}

// LogTail returns the last n lines of the server log, or why it cannot.
func (c *Cluster) LogTail(n int) string {
	b, err := os.ReadFile(c.LogFile)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *Cluster) writeConf(extra map[string]string) error {
	var b strings.Builder
	b.WriteString("\n# added by walnut internal/testpg\n")
	settings := [][2]string{
		{"listen_addresses", ""},
		{"unix_socket_directories", c.SocketDir},
		{"port", strconv.Itoa(c.Port)},
		{"shared_buffers", "32MB"},
		{"max_connections", "40"},
		{"wal_level", "replica"},
		{"max_wal_senders", "4"},
	}
	for _, kv := range settings {
		fmt.Fprintf(&b, "%s = %s\n", kv[0], confValue(kv[1]))
	}
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		fmt.Fprintf(&b, "%s = %s\n", k, confValue(extra[k]))
	}
	path := filepath.Join(c.DataDir, "postgresql.conf")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// startOpts builds pg_ctl's -o string, which pg_ctl hands to /bin/sh.
func startOpts(port int, socketDir string, conf map[string]string) string {
	opts := []string{"-p", strconv.Itoa(port), "-k", shellQuote(socketDir), "-c", shellQuote("listen_addresses=")}
	for _, k := range slices.Sorted(maps.Keys(conf)) {
		opts = append(opts, "-c", shellQuote(k+"="+conf[k]))
	}
	return strings.Join(opts, " ")
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// confValue quotes v for postgresql.conf, where any value may be a quoted
// string and backslashes inside one are escapes.
func confValue(v string) string {
	if strings.HasPrefix(v, "'") {
		return v
	}
	v = strings.ReplaceAll(v, `\`, `\\`)
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// freePort returns a TCP port nobody listens on right now. The servers
// listen only on unix sockets, so the port just has to be unique enough to
// name the socket; a free TCP port keeps it unique across parallel tests.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
