package testpg

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/pgcontrol"
)

func TestRequired(t *testing.T) {
	tests := []struct {
		setting, what string
		want          bool
	}{
		{"", "postgres", false},
		{"all", "postgres", true},
		{"all", "minio", true},
		{"postgres", "postgres", true},
		{"minio, postgres", "postgres", true},
		{"minio,azurite", "postgres", false},
		{"postgresql", "postgres", false},
		{",", "", false},
	}
	for _, tt := range tests {
		if got := required(tt.setting, tt.what); got != tt.want {
			t.Errorf("required(%q, %q) = %v, want %v", tt.setting, tt.what, got, tt.want)
		}
	}
}

func TestConfValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"on", "'on'"},
		{"", "''"},
		{"32MB", "'32MB'"},
		{"'already quoted'", "'already quoted'"},
		{"cp %p '/a b/%f'", "'cp %p ''/a b/%f'''"},
		{`C:\x`, `'C:\\x'`},
	}
	for _, tt := range tests {
		if got := confValue(tt.in); got != tt.want {
			t.Errorf("confValue(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCommandEnvironmentAndUser(t *testing.T) {
	Require(t, "postgres", CheckServerUser())
	dir := SharedTempDir(t)
	cmd := Command(t.Context(), []string{"WALNUT_X=1 2", "PATH=/usr/bin:/bin", "not-a-variable"}, "env")
	cmd.Dir = dir
	out, err := run(cmd)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(got)
	want := []string{"PATH=/usr/bin:/bin", "WALNUT_X=1 2"}
	if home := serverHome(); home != "" {
		want = append(want, "HOME="+home)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("environment = %q, want exactly %q", got, want)
	}

	cmd = Command(t.Context(), nil, "sh", "-c", "id -un; pwd; touch file")
	cmd.Dir = dir
	out, err = run(cmd)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	wantUser := ServerUser
	if !AsRoot() {
		wantUser = strings.TrimSpace(mustOutput(t, "id", "-un"))
	}
	if len(lines) != 2 || lines[0] != wantUser || lines[1] != dir {
		t.Errorf("user and directory = %q, want [%s %s]", lines, wantUser, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "file")); err != nil {
		t.Errorf("server user could not write the shared dir: %v", err)
	}
}

func mustOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out)
}

func TestNewStopStart(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Conf: map[string]string{"application_name": "testpg it's quoted"}})
	if !c.Running() {
		t.Fatal("Running() = false right after New")
	}
	c.Exec(t, "CREATE TABLE fruit (id int PRIMARY KEY, name text); INSERT INTO fruit VALUES (1, 'walnut'), (2, 'pecan')")
	if got := c.QueryString(t, "SELECT string_agg(name, ',' ORDER BY id) FROM fruit"); got != "walnut,pecan" {
		t.Fatalf("fruit = %q, want walnut,pecan", got)
	}
	for setting, want := range map[string]string{
		"listen_addresses":        "",
		"unix_socket_directories": c.SocketDir,
		"wal_level":               "replica",
		"fsync":                   "on",
		"application_name":        "testpg it's quoted",
	} {
		if got := c.QueryString(t, "SHOW "+setting); got != want {
			t.Errorf("SHOW %s = %q, want %q", setting, got, want)
		}
	}
	if _, err := c.Query(t.Context(), "SELECT NULL"); err == nil {
		t.Error("Query of a NULL succeeded, want an error")
	}
	if !strings.Contains(c.LogTail(60), "database system is ready to accept connections") {
		t.Errorf("log tail lacks the ready message:\n%s", c.LogTail(60))
	}

	conf := filepath.Join(c.DataDir, "postgresql.conf")
	before, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.Stop(t)
	if c.Running() {
		t.Fatal("Running() = true after Stop")
	}
	if _, err := c.Query(t.Context(), "SELECT 1"); err == nil {
		t.Fatal("query succeeded against a stopped server")
	}

	r := Start(t, c.DataDir, Options{Conf: map[string]string{"application_name": "restarted 'x' $HOME"}})
	r.WaitReady(t, time.Minute)
	if r.Port == c.Port && r.SocketDir == c.SocketDir {
		t.Errorf("restart reused port %d and socket dir %s", r.Port, r.SocketDir)
	}
	if got := r.QueryString(t, "SELECT string_agg(name, ',' ORDER BY id) FROM fruit"); got != "walnut,pecan" {
		t.Errorf("after restart fruit = %q, want walnut,pecan", got)
	}
	if got := r.QueryString(t, "SHOW port"); got != strconv.Itoa(r.Port) {
		t.Errorf("SHOW port = %s, want %d", got, r.Port)
	}
	if got := r.QueryString(t, "SHOW application_name"); got != "restarted 'x' $HOME" {
		t.Errorf("SHOW application_name after Start = %q, want the Options.Conf value verbatim", got)
	}
	after, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Error("Start edited postgresql.conf")
	}
	r.Stop(t)
	if r.Running() {
		t.Error("Running() = true after second Stop")
	}
}

func TestPgbench(t *testing.T) {
	t.Parallel()
	c := New(t, Options{InitdbArgs: []string{"--data-checksums"}})
	c.Pgbench(t, "-i", "-s", "1", "-q")
	c.Pgbench(t, "-t", "20", "-c", "2")
	if got := c.QueryString(t, "SELECT count(*) FROM pgbench_accounts"); got != "100000" {
		t.Errorf("pgbench_accounts has %s rows, want 100000", got)
	}
	if got := c.QueryString(t, "SELECT count(*) >= 40 FROM pgbench_history"); got != "t" {
		t.Errorf("pgbench_history has fewer than 40 rows (%s)", c.QueryString(t, "SELECT count(*) FROM pgbench_history"))
	}
	if got := c.QueryString(t, "SHOW data_checksums"); got != "on" {
		t.Errorf("data_checksums = %s, want on (InitdbArgs ignored?)", got)
	}
}

// TestArchiveRecovery walks the path the end-to-end tests take: archive WAL
// through an archive_command that reads its target from Options.Env, restore
// a base backup, recover from the archive, promote.
func TestArchiveRecovery(t *testing.T) {
	t.Parallel()
	archive := SharedTempDir(t)
	env := []string{"TESTPG_ARCHIVE=" + archive}
	c := New(t, Options{
		Env: env,
		Conf: map[string]string{
			"archive_mode":    "on",
			"archive_command": `test ! -f "$TESTPG_ARCHIVE/%f" && cp %p "$TESTPG_ARCHIVE/%f"`,
			// Ignored until the restored copy starts in recovery.
			"restore_command": `cp "$TESTPG_ARCHIVE/%f" %p`,
		},
	})
	c.Exec(t, "CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 1000)")

	backup := filepath.Join(SharedTempDir(t), "data")
	out, err := run(c.Command(t.Context(), nil, filepath.Join(c.BinDir, "pg_basebackup"), "-D", backup, "-X", "none", "-c", "fast"))
	if err != nil {
		t.Fatalf("pg_basebackup: %v", err)
	}
	t.Logf("pg_basebackup: %s", out)

	c.Exec(t, "INSERT INTO t SELECT generate_series(1001, 1500)")
	seg := c.QueryString(t, "SELECT pg_walfile_name(pg_switch_wal())")
	deadline := time.Now().Add(time.Minute)
	for c.QueryString(t, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < seg {
		if time.Now().After(deadline) {
			t.Fatalf("segment %s not archived after a minute", seg)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Kill(t)

	if err := os.WriteFile(filepath.Join(backup, "recovery.signal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := Start(t, backup, Options{Env: env})
	r.WaitReady(t, 2*time.Minute)
	if got := r.QueryString(t, "SELECT count(*) FROM t"); got != "1500" {
		t.Errorf("after recovery t has %s rows, want 1500", got)
	}
	if got := r.QueryString(t, "SELECT timeline_id FROM pg_control_checkpoint()"); got == "1" {
		// A promotion always starts a new timeline; still being on 1
		// would mean no archive recovery happened.
		t.Errorf("timeline after promotion = %s, want > 1", got)
	}
}

// TestStartErrFailingRestore checks what the walnut tests rely on: a
// restore_command that exits above 125 stops the server instead of letting it
// promote, and StartErr reports it without failing the test.
func TestStartErrFailingRestore(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Conf: map[string]string{"restore_command": `exit "$TESTPG_RESTORE_EXIT"`}})
	c.Exec(t, "CREATE TABLE t (n int)")
	c.Stop(t)
	if err := os.WriteFile(filepath.Join(c.DataDir, "recovery.signal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := StartErr(t, c.DataDir, Options{Env: []string{"TESTPG_RESTORE_EXIT=200"}})
	if err == nil {
		t.Fatalf("start succeeded; want failure\n%s", r.LogTail(20))
	}
	r.WaitStopped(t, time.Minute)
	if err := r.WaitReadyErr(context.Background(), time.Second); err == nil {
		t.Error("WaitReadyErr succeeded on a stopped server")
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, "recovery.signal")); err != nil {
		t.Errorf("recovery.signal gone (%v): the server promoted", err)
	}
	if log := r.LogTail(60); !strings.Contains(log, "exit code 200") {
		t.Errorf("log does not show restore_command exiting with 200 from Options.Env:\n%s", log)
	}
}

// Every major the version suite runs on is installed, is the major its
// directory says, and runs as the server user.
func TestMajorBinDir(t *testing.T) {
	for major := pgcontrol.MinMajor; major <= pgcontrol.MaxMajor; major++ {
		dir, err := MajorBinDir(major)
		Require(t, "postgres"+strconv.Itoa(major), err)
		if err := hasServer(dir); err != nil {
			t.Errorf("PostgreSQL %d in %s: %v", major, dir, err)
		}
	}
	if _, err := MajorBinDir(11); err == nil || !strings.Contains(err.Error(), "setup.sh") {
		t.Errorf("MajorBinDir(11) = %v, want an error naming setup.sh", err)
	}
}

// A major whose server is not installed fails a test under
// WALNUT_TEST_REQUIRE=all and skips it otherwise: CI never counts a
// version suite that did not run as passed. The test binary runs itself
// with an empty cache directory, so no server of 17 can be found.
func TestMissingMajorFailsWhenRequired(t *testing.T) {
	if os.Getenv("WALNUT_TESTPG_CHILD") == "1" {
		serverBinDir(t, 17)
		t.Log("found a server of 17")
		return
	}
	Require(t, "postgres", CheckServerUser())
	for _, tt := range []struct {
		require  string
		wantFail bool
		words    string
	}{
		{"all", true, "postgres17 is required"},
		{"postgres17", true, "postgres17 is required"},
		{"minio", false, "postgres17 unavailable"},
	} {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run", "^TestMissingMajorFailsWhenRequired$", "-test.v")
		cmd.Env = append(os.Environ(), "WALNUT_TESTPG_CHILD=1", "WALNUT_CACHE_DIR="+t.TempDir(), RequireEnv+"="+tt.require)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tt.wantFail || !strings.Contains(string(out), tt.words) ||
			(!tt.wantFail && !strings.Contains(string(out), "--- SKIP")) {
			t.Errorf("%s=%s: failed %v (%v), want %v and %q:\n%s", RequireEnv, tt.require, failed, err, tt.wantFail, tt.words, out)
		}
	}
}
