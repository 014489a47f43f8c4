package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/internal/testserver"
)

// WAL-E's README command lines, with walnut in wal-e's place and nothing
// else changed. The placeholders the README leaves to its reader (paths,
// bucket, backup name, "...") are filled in by readmeLine.
const (
	readmeS3BackupPush   = `AWS_SECRET_ACCESS_KEY=... walnut -k AWS_ACCESS_KEY_ID --s3-prefix=s3://some-bucket/directory/or/whatever backup-push /var/lib/my/database`
	readmeWABSWALPush    = `WABS_ACCESS_KEY=... walnut -a WABS_ACCOUNT_NAME --wabs-prefix=wabs://some-bucket/directory/or/whatever wal-push /var/lib/my/database/pg_xlog/WAL_SEGMENT_LONG_HEX`
	readmeBackupPush     = `envdir /etc/wal-e.d/env walnut backup-push /var/lib/my/database`
	readmeWALPush        = `envdir /etc/wal-e.d/env walnut wal-push /var/lib/my/database/pg_xlog/WAL_SEGMENT_LONG_HEX`
	readmeArchiveCommand = `envdir /etc/wal-e.d/env walnut wal-push %p`
	readmeFetchLatest    = `envdir /etc/wal-e.d/fetch-env walnut --s3-prefix=s3://some-bucket/directory/or/whatever backup-fetch /var/lib/my/database LATEST`
	readmeFetchNamed     = `envdir /etc/wal-e.d/fetch-env walnut --s3-prefix=s3://some-bucket/directory/or/whatever backup-fetch /var/lib/my/database base_LONGWALNUMBER_POSITION_NUMBER`
	readmeRestoreCommand = `envdir /etc/wal-e.d/env walnut wal-fetch %f %p`
	readmeRestoreQuoted  = `walnut wal-fetch "%f" "%p"`
	readmeDeleteBefore   = `walnut delete [--confirm] before base_00000004000002DF000000A6_03626144`
	readmeDeleteRetain   = `walnut delete [--confirm] retain 5`
	readmeDeleteOld      = `walnut delete [--confirm] old-versions`
	readmeDeleteAll      = `walnut delete [--confirm] everything`
)

// waleReadme fills the README's placeholders and runs its lines through
// sh as the server user, with walnut first on PATH.
type waleReadme struct {
	path     string // PATH: walnut's directory, the server's binaries, the system's
	fill     map[string]string
	extraEnv []string
}

func (w *waleReadme) line(l string, fill ...string) string {
	for k, v := range w.fill {
		l = strings.ReplaceAll(l, k, v)
	}
	for i := 0; i+1 < len(fill); i += 2 {
		l = strings.ReplaceAll(l, fill[i], fill[i+1])
	}
	return l
}

func (w *waleReadme) run(t *testing.T, env []string, line string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := testpg.Command(ctx, append(append([]string{"PATH=" + w.path}, w.extraEnv...), env...), "sh", "-c", line)
	r := runCommand(t, cmd)
	t.Logf("$ %s\n%s", line, r)
	return r
}

func (w *waleReadme) mustRun(t *testing.T, env []string, line string) result {
	t.Helper()
	r := w.run(t, env, line)
	if r.Code != 0 {
		t.Fatalf("%s: %s", line, r)
	}
	return r
}

// refused checks a line walnut does not run: exit 2, one line on stderr
// naming walnut's way, nothing on stdout.
func (w *waleReadme) refused(t *testing.T, env []string, line string, mentions ...string) {
	t.Helper()
	r := w.run(t, env, line)
	msg := strings.TrimSpace(r.Stderr)
	if r.Code != 2 || strings.Contains(msg, "\n") || r.Stdout != "" {
		t.Errorf("%s: want exit 2 and one line on stderr, got %s", line, r)
	}
	for _, m := range mentions {
		if !strings.Contains(msg, m) {
			t.Errorf("%s: %q does not mention %q", line, msg, m)
		}
	}
}

// Every command line of WAL-E's README, run unchanged against a real
// PostgreSQL 15 and MinIO (the README's S3 setup: keys and WALE_S3_PREFIX
// in an envdir), either works as WAL-E's did or stops with exit 2 and one
// line naming walnut's way. The WABS line runs against Azurite. The Swift
// and Google Cloud Storage examples are environment variables only, which
// the storage tests cover.
func TestWALEReadmeCommandLines(t *testing.T) {
	if _, err := exec.LookPath("envdir"); err != nil {
		testpg.Require(t, "envdir", err) // daemontools, from scripts/setup.sh
	}
	m := startMinIO(t)
	a := newS3Archive(t, m, "")
	// The README's /etc/wal-e.d/env: keys and WALE_S3_PREFIX (and the
	// endpoint and path style a server other than AWS needs); fetch-env
	// without the prefix, which the backup-fetch lines pass as a flag.
	envDir := filepath.Join(testpg.SharedTempDir(t), "env")
	fetchEnvDir := filepath.Join(testpg.SharedTempDir(t), "fetch-env")
	for _, d := range []struct {
		dir      string
		settings []string
	}{{envDir, append([]string{"WALE_S3_PREFIX=" + a.Prefix}, a.Env...)}, {fetchEnvDir, a.Env}} {
		if err := os.Mkdir(d.dir, 0o750); err != nil {
			t.Fatal(err)
		}
		for _, s := range d.settings {
			name, value, _ := strings.Cut(s, "=")
			if err := os.WriteFile(filepath.Join(d.dir, name), []byte(value+"\n"), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		if err := testpg.ChownToServer(d.dir); err != nil {
			t.Fatal(err)
		}
	}
	bin, err := testpg.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	w := &waleReadme{
		path: filepath.Dir(walnutBin) + ":" + bin + ":/usr/local/bin:/usr/bin:/bin",
		fill: map[string]string{
			"/etc/wal-e.d/env":                       envDir,
			"/etc/wal-e.d/fetch-env":                 fetchEnvDir,
			"s3://some-bucket/directory/or/whatever": a.Prefix,
		},
	}

	src := testpg.New(t, testpg.Options{
		Conf: map[string]string{"archive_mode": "on", "archive_command": w.line(readmeArchiveCommand), "archive_timeout": "0"},
		Env:  []string{"PATH=" + w.path},
	})
	src.Exec(t, "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
	pg := src.Env()

	// -k: a credential on the command line is refused.
	w.refused(t, pg, w.line(readmeS3BackupPush, "/var/lib/my/database", src.DataDir), "-k/--aws-access-key-id", "AWS_ACCESS_KEY_ID", "envdir")

	first := strings.TrimSpace(w.mustRun(t, pg, w.line(readmeBackupPush, "/var/lib/my/database", src.DataDir)).Stdout)
	// "You can also use this parameter [--pool-size] when calling
	// backup-fetch and backup-push", and --terse.
	second := strings.TrimSpace(w.mustRun(t, pg, w.line(`envdir /etc/wal-e.d/env walnut --terse backup-push --pool-size 4 /var/lib/my/database`, "/var/lib/my/database", src.DataDir)).Stdout)
	w.refused(t, pg, w.line(`envdir /etc/wal-e.d/env walnut backup-push --cluster-read-rate-limit 10000000 /var/lib/my/database`, "/var/lib/my/database", src.DataDir),
		"--cluster-read-rate-limit", "WALNUT_RATE_LIMIT")

	src.Exec(t, "INSERT INTO t SELECT g FROM generate_series(1001, 2000) g")
	switchAndWaitArchived(t, src)
	// wal-push by hand, as the README's envdir example does, with WAL-E's
	// -p and --terse: the segment is archived already, same content.
	last := src.QueryString(t, "SELECT last_archived_wal FROM pg_stat_archiver")
	push := w.mustRun(t, nil, w.line(strings.Replace(readmeWALPush, "wal-push", "--terse wal-push -p 8", 1),
		"/var/lib/my/database/pg_xlog/WAL_SEGMENT_LONG_HEX", filepath.Join(src.DataDir, "pg_wal", last)))
	if push.Stderr != "" {
		t.Errorf("wal-push --terse logged: %s", push.Stderr)
	}
	seg := filepath.Join(testpg.SharedTempDir(t), "pg_xlog", last) // for the WABS line, below
	copyForServer(t, filepath.Join(src.DataDir, "pg_wal", last), seg)

	// backup-list: WAL-E's header and tab-separated rows; a QUERY shows
	// one backup.
	header := "name\tlast_modified\texpanded_size_bytes\twal_segment_backup_start\twal_segment_offset_backup_start\twal_segment_backup_stop\twal_segment_offset_backup_stop"
	list := strings.Split(strings.TrimSpace(w.mustRun(t, nil, w.line(`envdir /etc/wal-e.d/env walnut backup-list`)).Stdout), "\n")
	if len(list) != 3 || list[0] != header || !strings.HasPrefix(list[1], first+"\t") || !strings.HasPrefix(list[2], second+"\t") || len(strings.Split(list[1], "\t")) != 7 {
		t.Errorf("backup-list: want WAL-E's header and %s, %s, tab-separated, got %q", first, second, list)
	}
	for query, want := range map[string]string{"LATEST": second, first: first} {
		got := strings.Split(strings.TrimSpace(w.mustRun(t, nil, w.line(`envdir /etc/wal-e.d/env walnut backup-list --detail `+query)).Stdout), "\n")
		if len(got) != 2 || !strings.HasPrefix(got[1], want+"\t") || !strings.HasPrefix(got[0], header) {
			t.Errorf("backup-list --detail %s: want the header and %s alone, got %q", query, want, got)
		}
	}
	// --aws-instance-profile with keys in the envdir would not use the
	// instance profile: refused.
	w.refused(t, nil, w.line(`envdir /etc/wal-e.d/env walnut --aws-instance-profile backup-list`), "AWS_ACCESS_KEY_ID")

	// backup-fetch LATEST, then recovery through the README's
	// restore_command (given on the server's command line, where it wins
	// over what backup-fetch wrote).
	dest := filepath.Join(testpg.SharedTempDir(t), "restore")
	w.mustRun(t, nil, w.line(readmeFetchLatest, "/var/lib/my/database", dest))
	restored := testpg.Start(t, dest, testpg.Options{Conf: map[string]string{"archive_mode": "off", "restore_command": w.line(readmeRestoreCommand)}, Env: []string{"PATH=" + w.path}})
	restored.WaitReady(t, 5*time.Minute)
	if n := restored.QueryString(t, "SELECT count(*) FROM t"); n != "2000" {
		t.Errorf("restored LATEST has %s rows, want 2000", n)
	}
	restored.Stop(t)
	// backup-fetch by name, recovering with the README's quoted
	// restore_command and the settings in the server's environment.
	dest2 := filepath.Join(testpg.SharedTempDir(t), "restore")
	w.mustRun(t, nil, w.line(readmeFetchNamed, "/var/lib/my/database", dest2, "base_LONGWALNUMBER_POSITION_NUMBER", first))
	restored = testpg.Start(t, dest2, testpg.Options{Conf: map[string]string{"archive_mode": "off", "restore_command": readmeRestoreQuoted},
		Env: append([]string{"PATH=" + w.path, "WALE_S3_PREFIX=" + a.Prefix}, a.Env...)})
	restored.WaitReady(t, 5*time.Minute)
	if n := restored.QueryString(t, "SELECT count(*) FROM t"); n != "2000" {
		t.Errorf("restored %s has %s rows, want 2000", first, n)
	}
	restored.Stop(t)
	// The README's tablespace options: walnut restores tablespaces where
	// they were, or where --tablespace-mapping says.
	dest3 := filepath.Join(testpg.SharedTempDir(t), "restore")
	w.refused(t, nil, w.line(strings.Replace(readmeFetchLatest, "backup-fetch", "backup-fetch --blind-restore", 1), "/var/lib/my/database", dest3), "--blind-restore", "--tablespace-mapping")
	if entries, _ := os.ReadDir(dest3); len(entries) != 0 {
		t.Errorf("a refused backup-fetch wrote %d entries", len(entries))
	}
	// --restore-spec, the README's example with this backup's tablespace:
	// restored into "loc", linked from pg_tblspc/OID.
	tsDir := filepath.Join(testpg.SharedTempDir(t), "ts")
	if err := os.Mkdir(tsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(tsDir); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, "CREATE TABLESPACE wale_ts LOCATION '"+tsDir+"'")
	src.Exec(t, "CREATE TABLE in_ts TABLESPACE wale_ts AS SELECT g FROM generate_series(1, 100) g")
	oid := src.QueryString(t, "SELECT oid FROM pg_tablespace WHERE spcname = 'wale_ts'")
	third := strings.TrimSpace(w.mustRun(t, pg, w.line(readmeBackupPush, "/var/lib/my/database", src.DataDir)).Stdout)
	specDir := testpg.SharedTempDir(t)
	loc := filepath.Join(specDir, "tblspc001")
	spec := filepath.Join(specDir, "spec.json")
	if err := os.WriteFile(spec, []byte(`{
    "`+oid+`": {
        "loc": "`+loc+`/",
        "link": "pg_tblspc/`+oid+`"
    },
    "tablespaces": [
        "`+oid+`"
    ]
}`), 0o644); err != nil {
		t.Fatal(err)
	}
	w.mustRun(t, nil, w.line(strings.Replace(readmeFetchNamed, "backup-fetch", "backup-fetch --restore-spec "+spec, 1), "/var/lib/my/database", dest3, "base_LONGWALNUMBER_POSITION_NUMBER", third))
	if link, err := os.Readlink(filepath.Join(dest3, "pg_tblspc", oid)); err != nil || link != loc {
		t.Errorf("pg_tblspc/%s links to %q (%v), want %s", oid, link, err, loc)
	}
	if entries, _ := os.ReadDir(loc); len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "PG_15_") {
		t.Errorf("%s holds %v, want the tablespace's PG_15_ directory", loc, entries)
	}

	// delete, each form with and without --confirm as the README writes
	// [--confirm]; --dry-run and -n as WAL-E's parser takes them.
	del := func(line string, confirm bool, fill ...string) string {
		flag := ""
		if confirm {
			flag = "--confirm "
		}
		return "envdir " + envDir + " " + w.line(strings.Replace(line, "[--confirm] ", flag, 1), fill...)
	}
	w.refused(t, nil, del(readmeDeleteOld, false), "old-versions", "retain N")
	w.refused(t, nil, del(readmeDeleteOld, true), "old-versions", "retain N")
	for _, confirm := range []bool{false, true} {
		out := w.mustRun(t, nil, del(readmeDeleteRetain, confirm)).Stdout
		// Both backups stay; WAL older than the oldest may go.
		if !strings.Contains(out, ", 3 kept") || strings.Contains(out, "backup base_") {
			t.Errorf("delete retain 5 with three backups: want all kept, got %s", out)
		}
	}
	out := w.mustRun(t, nil, del(readmeDeleteBefore, false, "base_00000004000002DF000000A6_03626144", second)).Stdout
	if !strings.Contains(out, "would delete backup "+first) || strings.Contains(out, "backup "+second) {
		t.Errorf("delete before %s (dry run): want %s to go, got %s", second, first, out)
	}
	// A WAL segment name in place of the backup: the first backup starting
	// at or after it is kept. --dry-run and -n keep the dry run.
	segment := strings.Split(second, "_")[1]
	for _, flag := range []string{"--dry-run", "-n"} {
		out = w.mustRun(t, nil, del(readmeDeleteBefore, false, "delete", "delete "+flag, "base_00000004000002DF000000A6_03626144", segment)).Stdout
		if !strings.Contains(out, "would delete backup "+first) || strings.Contains(out, "backup "+second) || !strings.Contains(out, "dry run") {
			t.Errorf("delete %s before %s: want a dry run deleting %s, got %s", flag, segment, first, out)
		}
	}
	w.refused(t, nil, del(readmeDeleteBefore, true, "delete", "delete --dry-run", "base_00000004000002DF000000A6_03626144", segment), "--dry-run and --confirm")
	w.mustRun(t, nil, del(readmeDeleteBefore, true, "base_00000004000002DF000000A6_03626144", segment))
	if list := w.mustRun(t, nil, "envdir "+envDir+" walnut backup-list").Stdout; strings.Contains(list, first) || !strings.Contains(list, second) {
		t.Errorf("after delete --confirm before %s: %s", segment, list)
	}
	if out := w.mustRun(t, nil, del(readmeDeleteAll, false)).Stdout; !strings.Contains(out, "would delete backup "+second) {
		t.Errorf("delete everything (dry run): %s", out)
	}
	src.Stop(t) // so nothing archives into the archive being emptied
	w.mustRun(t, nil, del(readmeDeleteAll, true))
	if keys := s3Keys(t, m, a, ""); len(keys) != 0 {
		t.Errorf("delete --confirm everything left %v", keys)
	}

	// The WABS example, against Azurite: -a is the account name.
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, azureContainer)
	w.extraEnv = []string{"AZURE_STORAGE_ENDPOINT=" + az.Endpoint}
	w.mustRun(t, nil, w.line(readmeWABSWALPush, "WABS_ACCESS_KEY=...", "WABS_ACCESS_KEY="+testserver.AzuriteKey,
		"-a WABS_ACCOUNT_NAME", "-a "+testserver.AzuriteAccount, "wabs://some-bucket/directory/or/whatever", "wabs://"+azureContainer+"/wale-readme",
		"/var/lib/my/database/pg_xlog/WAL_SEGMENT_LONG_HEX", seg))
	fetched := filepath.Join(filepath.Dir(seg), "fetched")
	w.mustRun(t, []string{"WABS_ACCESS_KEY=" + testserver.AzuriteKey, "WABS_ACCOUNT_NAME=" + testserver.AzuriteAccount, "WALE_WABS_PREFIX=wabs://" + azureContainer + "/wale-readme"},
		"walnut wal-fetch "+last+" "+fetched)
	want, _ := os.ReadFile(seg)
	if got, _ := os.ReadFile(fetched); !bytes.Equal(got, want) || len(want) == 0 {
		t.Errorf("the segment pushed to Azurite came back as %d bytes, want its %d", len(got), len(want))
	}
}

// copyForServer copies src to dst, creating dst's directory, for the
// server user.
func copyForServer(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(filepath.Dir(dst)); err != nil {
		t.Fatal(err)
	}
}
