package commands

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/commands/cliargs"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/retention"
	"github.com/walnut-pg/walnut/storage/local"
)

// walnutRun runs Main and returns its exit code, stdout and stderr.
func walnutRun(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := Main(append([]string{"walnut"}, args...), env, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// Each WAL-E option walnut cannot honour stops the run before anything is
// stored, exit 2, with one line naming the option and walnut's way.
func TestWALEOptionsRefusedNamingTheEquivalent(t *testing.T) {
	dir := t.TempDir()
	prefix := "file://" + dir
	seg := fixture.Segment(t, t.TempDir(), "000000010000000000000001", 1)
	env := []string{"WALNUT_PREFIX=" + prefix}
	cases := []struct {
		name     string
		env      []string
		args     []string
		mentions []string
	}{
		{"-k", env, []string{"-k", "AKIAEXAMPLE", "wal-push", seg}, []string{"-k/--aws-access-key-id", "AWS_ACCESS_KEY_ID", "envdir"}},
		{"-kKEY", env, []string{"-kAKIAEXAMPLE", "wal-push", seg}, []string{"-k/--aws-access-key-id", "AWS_ACCESS_KEY_ID"}},
		{"--aws-access-key-id", env, []string{"--aws-access-key-id=AKIAEXAMPLE", "backup-list"}, []string{"AWS_ACCESS_KEY_ID"}},
		{"--gs-access-key-id", env, []string{"--gs-access-key-id", "GOOG", "backup-list"}, []string{"GOOGLE_APPLICATION_CREDENTIALS"}},
		{"s3-prefix not s3", nil, []string{"--s3-prefix=" + prefix, "wal-push", seg}, []string{"--s3-prefix", "s3://"}},
		{"wabs-prefix not wabs", nil, []string{"--wabs-prefix", "s3://b/p", "backup-list"}, []string{"--wabs-prefix", "wabs://"}},
		{"gs-prefix not gs", nil, []string{"--gs-prefix", "s3://b/p", "backup-list"}, []string{"--gs-prefix", "gs://"}},
		{"file-prefix not file", nil, []string{"--file-prefix", "s3://b/p", "backup-list"}, []string{"--file-prefix", "file://"}},
		{"two prefixes", nil, []string{"--prefix", prefix, "--file-prefix", prefix, "backup-list"}, []string{"--prefix and --file-prefix", "one"}},
		{"WALE_S3_PREFIX not s3", []string{"WALE_S3_PREFIX=" + prefix}, []string{"wal-push", seg}, []string{"WALE_S3_PREFIX", "s3://"}},
		{"cluster-read-rate-limit", env, []string{"backup-push", "--cluster-read-rate-limit", "1000000", dir}, []string{"--cluster-read-rate-limit", "WALNUT_RATE_LIMIT"}},
		{"while-offline", env, []string{"backup-push", "--while-offline", dir}, []string{"--while-offline", "standby"}},
		{"backup-push -p 0", env, []string{"backup-push", "-p", "0", dir}, []string{"--pool-size 0"}},
		{"blind-restore", env, []string{"backup-fetch", t.TempDir(), "LATEST", "--blind-restore"}, []string{"--blind-restore", "--tablespace-mapping"}},
		{"restore-spec missing", env, []string{"backup-fetch", "--restore-spec", "/nonexistent/spec.json", t.TempDir(), "LATEST"}, []string{"--restore-spec", "/nonexistent/spec.json"}},
		{"dry-run and confirm", env, []string{"delete", "--dry-run", "--confirm", "retain", "1"}, []string{"--dry-run and --confirm"}},
		{"-n and confirm", env, []string{"delete", "-n", "--confirm", "everything"}, []string{"--dry-run and --confirm"}},
		{"old-versions", env, []string{"delete", "--confirm", "old-versions"}, []string{"old-versions", "retain N"}},
		{"backup-list bad query", env, []string{"backup-list", "yesterday"}, []string{`"yesterday"`, "LATEST"}},
		{"instance profile with keys", append([]string{"AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=b"}, env...), []string{"--aws-instance-profile", "backup-list"}, []string{"AWS_ACCESS_KEY_ID", "unset"}},
		{"AWS_INSTANCE_PROFILE with a profile", append([]string{"AWS_INSTANCE_PROFILE=true", "AWS_PROFILE=x"}, env...), []string{"backup-list"}, []string{"AWS_PROFILE", "unset"}},
		{"AWS_INSTANCE_PROFILE bad", append([]string{"AWS_INSTANCE_PROFILE=yes"}, env...), []string{"backup-list"}, []string{"AWS_INSTANCE_PROFILE"}},
		{"empty gpg key id", env, []string{"--gpg-key-id", "", "wal-push", seg}, []string{"--gpg-key-id"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := walnutRun(t, c.env, c.args...)
			line := strings.TrimSpace(stderr)
			if code != ExitUsage || strings.Contains(line, "\n") {
				t.Errorf("exit %d, want %d with one line: %s", code, ExitUsage, line)
			}
			for _, m := range c.mentions {
				if !strings.Contains(line, m) {
					t.Errorf("%q does not mention %q", line, m)
				}
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused command stored %v", entries)
	}
}

// WAL-E's forms that walnut honours do what they did there.
func TestWALEOptionsThatWork(t *testing.T) {
	dir := t.TempDir()
	prefix := "file://" + dir
	wal := t.TempDir()
	seg := fixture.Segment(t, wal, "000000010000000000000001", 1)

	// -p is wal-push's pool size; --file-prefix sets the prefix.
	if code, _, stderr := walnutRun(t, nil, "--terse", "--file-prefix="+prefix, "wal-push", "-p2", seg); code != ExitOK {
		t.Fatalf("wal-push -p 2: exit %d: %s", code, stderr)
	}
	if keys := fixture.Keys(t, openLocal(t, dir), "wal/"); len(keys) != 1 || !strings.HasPrefix(keys[0], "wal/000000010000000000000001-") {
		t.Errorf("wal-push stored %v", keys)
	}
	// -p is wal-fetch's prefetch; 0 turns it off.
	dest := filepath.Join(t.TempDir(), "seg")
	if code, _, stderr := walnutRun(t, []string{"WALE_FILE_PREFIX=" + prefix}, "wal-fetch", "-p", "0", "000000010000000000000001", dest); code != ExitOK {
		t.Fatalf("wal-fetch -p 0: exit %d: %s", code, stderr)
	}
	// backup-list with no backup: WAL-E's header, tab-separated; a query
	// that matches nothing prints the header alone.
	for _, args := range [][]string{{"backup-list"}, {"backup-list", "LATEST"}, {"backup-list", "--detail", "base_000000010000000000000002_00000028"}} {
		code, stdout, stderr := walnutRun(t, []string{"WALE_FILE_PREFIX=" + prefix}, args...)
		if code != ExitOK || !strings.HasPrefix(stdout, strings.Join(retention.WALEListColumns, "\t")) || strings.Count(stdout, "\n") != 1 {
			t.Errorf("%v: exit %d, want WAL-E's tab-separated header alone: %q %s", args, code, stdout, stderr)
		}
	}
	// delete -n and --dry-run keep the dry run.
	for _, flag := range []string{"-n", "--dry-run"} {
		code, stdout, stderr := walnutRun(t, []string{"WALE_FILE_PREFIX=" + prefix}, "delete", flag, "retain", "1")
		if code != ExitOK || !strings.Contains(stdout, "nothing to delete") {
			t.Errorf("delete %s retain 1: exit %d: %s %s", flag, code, stdout, stderr)
		}
	}
	// before SEGMENT with no backup after it would delete every backup:
	// refused, naming delete everything.
	code, _, stderr := walnutRun(t, []string{"WALE_FILE_PREFIX=" + prefix}, "delete", "--confirm", "before", "000000010000000000000009")
	if code != ExitUsage || !strings.Contains(stderr, "delete everything") {
		t.Errorf("delete before SEGMENT on an archive without backups: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "walnut.json")); err != nil {
		t.Errorf("delete before SEGMENT deleted the archive's identity: %v", err)
	}
}

// -a is the Azure account name (not a secret: it is in every request's
// host name) and wins over the envdir's, as WAL-E's flag did.
func TestWALEAccountNameFlag(t *testing.T) {
	envdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(envdir, "WABS_ACCOUNT_NAME"), []byte("fromenvdir\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-a", "fromflag"}, {"--wabs-account-name=fromflag"}} {
		g := &globals{environ: []string{"AZURE_STORAGE_ACCOUNT=fromenv"}, stdout: io.Discard, stderr: io.Discard}
		app := newApp(g)
		argv := append(append([]string{"walnut", "--envdir", envdir}, args...), "version")
		if err := app.Run(argv); err != nil {
			t.Fatal(err)
		}
		if got := g.env.Getenv("AZURE_STORAGE_ACCOUNT"); got != "fromflag" {
			t.Errorf("%v: AZURE_STORAGE_ACCOUNT = %q, want fromflag", args, got)
		}
	}
}

// check reads archive_command as walnut would run it: WAL-E's prefix flags
// name the prefix, and the values of its other flags are not commands.
func TestArchiveCommandReadsWALEFlags(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "walnut")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ac := inspectArchiveCommand(exe+" --terse -a acct --gpg-key-id ABCD --s3-prefix=s3://b/p wal-push -p 8 %p", []string{"PATH=/usr/bin"})
	if !ac.Walnut || ac.Prefix != "s3://b/p" || ac.From != "--prefix" {
		t.Errorf("prefix %q from %q (problem %q), want s3://b/p from the flag", ac.Prefix, ac.From, ac.Problem)
	}
}

func openLocal(t *testing.T, dir string) *local.Store {
	t.Helper()
	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSplitAttached(t *testing.T) {
	app := newApp(&globals{stdout: io.Discard, stderr: io.Discard})
	for _, c := range []struct{ in, want []string }{
		{[]string{"walnut", "wal-push", "-p8", "/x"}, []string{"walnut", "wal-push", "-p", "8", "/x"}},
		{[]string{"walnut", "-aacct", "wal-fetch", "-p0", "N", "D"}, []string{"walnut", "-a", "acct", "wal-fetch", "-p", "0", "N", "D"}},
		{[]string{"walnut", "--envdir", "-p8", "wal-push", "/x"}, []string{"walnut", "--envdir", "-p8", "wal-push", "/x"}},
		{[]string{"walnut", "delete", "-n", "retain", "5"}, []string{"walnut", "delete", "-n", "retain", "5"}},
		{[]string{"walnut", "wal-push", "--", "-p8"}, []string{"walnut", "wal-push", "--", "-p8"}},
		{[]string{"walnut", "wal-push", "-p=8", "/x"}, []string{"walnut", "wal-push", "-p=8", "/x"}},
		{[]string{"walnut", "wal-push", "-pool-size", "8", "/x"}, []string{"walnut", "wal-push", "-pool-size", "8", "/x"}},
		{[]string{"walnut", "wal-fetch", "-prefetch=2", "N", "D"}, []string{"walnut", "wal-fetch", "-prefetch=2", "N", "D"}},
	} {
		if got := cliargs.SplitAttached(app, c.in); !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}
