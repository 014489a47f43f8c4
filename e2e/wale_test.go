package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/internal/testserver"
)

// waleArchive is one prefix a WAL-E archive is laid out under, exactly as
// WAL-E 1.x wrote it, for walnut to read and then archive into itself.
type waleArchive struct {
	name      string
	a         *archive
	encrypted bool
	put       func(t *testing.T, key string, data []byte)
	keys      func(t *testing.T, under string) []string
}

// waleSource is what a WAL-E backup-push and archive_command produced,
// before it is laid out: the backup's partitions (plain tar), its
// sentinel, and the WAL files the server archived.
type waleSource struct {
	backup   string
	partsDir string
	sentinel []byte
	version  string
	walDir   string
	tsOrig   string // the tablespace's location in the source
}

// gpgAgentHome is a GnuPG home owned by the server user whose key has a
// passphrase that only the running agent holds (preset, as
// gpg-preset-passphrase does at boot): the situation WAL-E's users are in.
type gpgAgentHome struct {
	dir, keyID string
	subKeyID   string // the encryption subkey, which gpg -e -r names in the message
}

func gpgAsServer(t *testing.T, home string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := testpg.Command(t.Context(), []string{"GNUPGHOME=" + home}, "gpg", append([]string{"--batch", "--no-tty"}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

const waleGPGPass = "wal-e agent passphrase"

func newGPGAgentHome(t *testing.T) *gpgAgentHome {
	t.Helper()
	for _, tool := range []string{"gpg", "gpg-agent", "gpgconf", "gpg-connect-agent", "/usr/lib/gnupg/gpg-preset-passphrase"} {
		if _, err := exec.LookPath(tool); err != nil {
			testpg.Require(t, "gpg", err)
		}
	}
	h := &gpgAgentHome{dir: filepath.Join(testpg.SharedTempDir(t), "g")}
	if err := os.Mkdir(h.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.dir, "gpg-agent.conf"), []byte("allow-preset-passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(h.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		testpg.Command(context.Background(), []string{"GNUPGHOME=" + h.dir}, "gpgconf", "--kill", "all").Run()
	})
	gpgAsServer(t, h.dir, nil, "--pinentry-mode", "loopback", "--passphrase", waleGPGPass,
		"--quick-gen-key", "WAL-E <wale@example.org>", "future-default", "default", "never")
	list := string(gpgAsServer(t, h.dir, nil, "--with-colons", "--with-keygrip", "--list-secret-keys"))
	var grips []string
	for _, line := range strings.Split(list, "\n") {
		f := strings.Split(line, ":")
		switch {
		case f[0] == "sec" && h.keyID == "":
			h.keyID = f[4]
		case f[0] == "ssb" && strings.Contains(f[11], "e"):
			h.subKeyID = f[4]
		case f[0] == "grp":
			grips = append(grips, f[9])
		}
	}
	if h.keyID == "" || h.subKeyID == "" || len(grips) == 0 {
		t.Fatalf("no key or encryption subkey in the new gpg home:\n%s", list)
	}
	// A fresh agent, so the passphrase from key generation is not cached:
	// only the preset one can unlock the key.
	testpg.Command(t.Context(), []string{"GNUPGHOME=" + h.dir}, "gpgconf", "--kill", "gpg-agent").Run()
	if out, err := testpg.Command(t.Context(), []string{"GNUPGHOME=" + h.dir}, "gpg-connect-agent", "/bye").CombinedOutput(); err != nil {
		t.Fatalf("start gpg-agent: %v\n%s", err, out)
	}
	for _, g := range grips {
		cmd := testpg.Command(t.Context(), []string{"GNUPGHOME=" + h.dir}, "/usr/lib/gnupg/gpg-preset-passphrase", "--preset", g)
		cmd.Stdin = strings.NewReader(waleGPGPass)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gpg-preset-passphrase: %v\n%s", err, out)
		}
	}
	return h
}

// encodeWALE is WAL-E's upload pipeline: lzop -c, then gpg -e -z 0 -r KEY
// when a key is set.
func encodeWALE(t *testing.T, data []byte, gh *gpgAgentHome) []byte {
	t.Helper()
	cmd := exec.Command("lzop", "-c")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lzop: %v", err)
	}
	if gh == nil {
		return out
	}
	return gpgAsServer(t, gh.dir, out, "--trust-model", "always", "-e", "-z", "0", "-r", gh.keyID)
}

// layOut writes src into w as WAL-E's wal-push and backup-push did.
func (w *waleArchive) layOut(t *testing.T, src *waleSource, gh *gpgAgentHome) {
	t.Helper()
	if !w.encrypted {
		gh = nil
	}
	wal, err := os.ReadDir(src.walDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range wal {
		b, err := os.ReadFile(filepath.Join(src.walDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		w.put(t, "wal_005/"+e.Name()+".lzo", encodeWALE(t, b, gh))
	}
	parts, err := os.ReadDir(src.partsDir)
	if err != nil {
		t.Fatal(err)
	}
	base := "basebackups_005/" + src.backup
	w.put(t, base+"/extended_version.txt", []byte(src.version))
	for _, e := range parts {
		b, err := os.ReadFile(filepath.Join(src.partsDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		w.put(t, base+"/tar_partitions/"+e.Name()+".lzo", encodeWALE(t, b, gh))
	}
	w.put(t, base+"_backup_stop_sentinel.json", src.sentinel)
}

func fileWALEArchive(t *testing.T, name, prefixVar string, encrypted bool, extra ...string) *waleArchive {
	a := newArchive(t)
	if err := os.MkdirAll(a.Path, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(a.Path); err != nil {
		t.Fatal(err)
	}
	if prefixVar == "WALE_FILE_PREFIX" {
		a.Prefix = "file://localhost" + a.Path // WAL-E's README writes it so
	}
	a.Env = extra
	a.Envdir = writeEnvdir(t, append([]string{prefixVar + "=" + a.Prefix}, extra...)...)
	return &waleArchive{
		name: name, a: a, encrypted: encrypted,
		put: func(t *testing.T, key string, data []byte) {
			p := filepath.Join(a.Path, filepath.FromSlash(key))
			if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := testpg.ChownToServer(a.Path); err != nil {
				t.Fatal(err)
			}
		},
		keys: func(t *testing.T, under string) []string {
			var keys []string
			filepath.WalkDir(filepath.Join(a.Path, under), func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(a.Path, p)
					keys = append(keys, filepath.ToSlash(rel))
				}
				return nil
			})
			return keys
		},
	}
}

func s3WALEArchive(t *testing.T, m *testserver.MinIOServer, name, prefixVar string, encrypted bool, extra ...string) *waleArchive {
	a := &archive{Dir: testpg.SharedTempDir(t), Prefix: "s3://" + s3Bucket + "/wale-" + name}
	a.Env = append(m.Env(""), extra...)
	a.Envdir = writeEnvdir(t, append([]string{prefixVar + "=" + a.Prefix}, a.Env...)...)
	w := &waleArchive{name: name, a: a, encrypted: encrypted}
	w.put = func(t *testing.T, key string, data []byte) {
		_, err := m.Client(t).PutObject(t.Context(), s3Bucket, "wale-"+name+"/"+key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	w.keys = func(t *testing.T, under string) []string { return s3Keys(t, m, a, under) }
	return w
}

// waleBackupPush takes a base backup of src as WAL-E did: pg_backup_start
// in a session held open, the data directory written into tar partitions
// with Python's tarfile (testdata/wale_partition.py), pg_backup_stop, and
// backup_label and tablespace_map in one more partition (WAL-E read them
// from the data directory, where exclusive backups left them).
func waleBackupPush(t *testing.T, src *testpg.Cluster, out *waleSource) {
	t.Helper()
	ctx := t.Context()
	conn := src.Connect(t)
	defer conn.Close(ctx)
	var startFile, startOff string
	if err := conn.QueryRow(ctx, `SELECT file_name, lpad(file_offset::text, 8, '0') FROM pg_walfile_name_offset(pg_backup_start('wal-e', true))`).Scan(&startFile, &startOff); err != nil {
		t.Fatal(err)
	}
	out.backup = "base_" + startFile + "_" + startOff
	out.partsDir = filepath.Join(t.TempDir(), "parts")
	if err := os.Mkdir(out.partsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	py, err := exec.Command("python3", "testdata/wale_partition.py", "data", src.DataDir, out.partsDir, "4194304").Output()
	if err != nil {
		t.Fatalf("wale_partition.py: %v", err)
	}
	var walk struct {
		Spec     json.RawMessage `json:"spec"`
		Expanded int64           `json:"expanded_size_bytes"`
	}
	if err := json.Unmarshal(py, &walk); err != nil {
		t.Fatal(err)
	}
	var label, spcmap, stopFile, stopOff string
	if err := conn.QueryRow(ctx, `SELECT labelfile, coalesce(spcmapfile, ''), f.file_name, lpad(f.file_offset::text, 8, '0')
		FROM pg_backup_stop(true) s, pg_walfile_name_offset(s.lsn) f`).Scan(&label, &spcmap, &stopFile, &stopOff); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	extra := []string{"extra", out.partsDir, fmt.Sprint(countFiles(t, out.partsDir)), "backup_label=" + writeTemp(t, dir, "backup_label", label)}
	if spcmap != "" {
		extra = append(extra, "tablespace_map="+writeTemp(t, dir, "tablespace_map", spcmap))
	}
	if b, err := exec.Command("python3", append([]string{"testdata/wale_partition.py"}, extra...)...).CombinedOutput(); err != nil {
		t.Fatalf("wale_partition.py extra: %v\n%s", err, b)
	}
	out.sentinel, _ = json.Marshal(map[string]any{
		"wal_segment_backup_stop":        stopFile,
		"wal_segment_offset_backup_stop": stopOff,
		"expanded_size_bytes":            walk.Expanded,
		"spec":                           walk.Spec,
	})
	if err := conn.QueryRow(ctx, `SELECT version()`).Scan(&out.version); err != nil {
		t.Fatal(err)
	}
}

func countFiles(t *testing.T, dir string) int {
	e, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(e)
}

func writeTemp(t *testing.T, dir, name, content string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeScript(t *testing.T, path, body string) {
	if err := os.WriteFile(path, []byte("#!/bin/sh\nset -e\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(path); err != nil {
		t.Fatal(err)
	}
}

// phases counts rows per phase in a table of the restored server.
func phases(t *testing.T, c *testpg.Cluster, table string) string {
	return c.QueryString(t, "SELECT string_agg(phase || '=' || n, ',' ORDER BY phase) FROM (SELECT phase, count(*) n FROM "+table+" GROUP BY phase) s")
}

// A WAL-E archive, laid out by the same tools WAL-E ran (Python's tarfile,
// lzop, gpg) from a real PostgreSQL 15 backup and its real WAL, under
// four prefixes: file:// and MinIO, plain and gpg-encrypted (the private
// key only in a gpg home with a passphrase its agent holds). The server
// then switches archive_command to walnut mid-way, as a migration does.
// walnut lists WAL-E's backup, restores it to a restore point in walnut's
// part of the WAL (so recovery replays WAL-E's WAL, then walnut's),
// refuses a corrupt .lzo in archive recovery with exit 200, and delete
// retires WAL-E's backup and WAL by walnut's rules.
func TestWALEArchive(t *testing.T) {
	for _, tool := range []string{"lzop", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			testpg.Require(t, tool, err)
		}
	}
	m := startMinIO(t)
	gh := newGPGAgentHome(t)
	gpgEnv := "GNUPGHOME=" + gh.dir
	stores := []*waleArchive{
		fileWALEArchive(t, "file", "WALE_FILE_PREFIX", false),
		fileWALEArchive(t, "file-gpg", "WALNUT_PREFIX", true, gpgEnv),
		s3WALEArchive(t, m, "s3", "WALE_S3_PREFIX", false),
		s3WALEArchive(t, m, "s3-gpg", "WALE_S3_PREFIX", true, gpgEnv),
	}

	work := testpg.SharedTempDir(t)
	src := &waleSource{walDir: filepath.Join(work, "wal"), tsOrig: filepath.Join(work, "ts")}
	for _, d := range []string{src.walDir, src.tsOrig} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	wale := filepath.Join(work, "wale-push.sh")
	writeScript(t, wale, fmt.Sprintf("test ! -e %[1]s/\"$2\"\ncp \"$1\" %[1]s/.\"$2\".tmp\nmv %[1]s/.\"$2\".tmp %[1]s/\"$2\"\n", src.walDir))
	var pushes strings.Builder
	for _, w := range stores {
		fmt.Fprintf(&pushes, "%s --envdir %s wal-push \"$1\"\n", walnutBin, w.a.Envdir)
	}
	walnutPush := filepath.Join(work, "walnut-push.sh")
	writeScript(t, walnutPush, pushes.String())
	if err := testpg.ChownToServer(work); err != nil {
		t.Fatal(err)
	}

	c := testpg.New(t, testpg.Options{Conf: map[string]string{
		"archive_mode": "on", "archive_command": wale + " %p %f", "archive_timeout": "0",
	}})
	c.Exec(t, "CREATE TABLESPACE tsp LOCATION '"+src.tsOrig+"'")
	c.Exec(t, "CREATE TABLE a (id int, phase text); CREATE TABLE b (id int, phase text) TABLESPACE tsp")
	insert := func(phase string, n int) {
		c.Exec(t, fmt.Sprintf("INSERT INTO a SELECT g, '%[1]s' FROM generate_series(1, %[2]d) g; INSERT INTO b SELECT g, '%[1]s' FROM generate_series(1, %[2]d) g", phase, n))
	}
	insert("1-before-backup", 20000)
	waleBackupPush(t, c, src)
	insert("2-wale-wal", 3000)
	switchAndWaitArchived(t, c)
	walePart, _ := os.ReadDir(src.walDir)
	c.Exec(t, "ALTER SYSTEM SET archive_command = '"+walnutPush+" %p'")
	c.Exec(t, "SELECT pg_reload_conf()")
	time.Sleep(500 * time.Millisecond) // the archiver rereads its settings between files
	insert("3-walnut-wal", 4000)
	c.Exec(t, "SELECT pg_create_restore_point('wale_target')")
	insert("4-after-target", 500)
	switchAndWaitArchived(t, c)
	want := "1-before-backup=20000,2-wale-wal=3000,3-walnut-wal=4000"

	for _, w := range stores {
		w.layOut(t, src, gh)
	}
	t.Logf("WAL-E archived %d files; backup %s", len(walePart), src.backup)

	for _, w := range stores {
		t.Run(w.name, func(t *testing.T) {
			e := env(w.a, nil)
			// The archive is mixed: WAL-E's WAL and walnut's.
			if len(w.keys(t, "wal_005/")) == 0 || len(w.keys(t, "wal/")) == 0 {
				t.Fatalf("archive is not mixed: wal_005 %v, wal %v", w.keys(t, "wal_005/"), w.keys(t, "wal/"))
			}
			var list []struct {
				Name   string `json:"name"`
				Source string `json:"source"`
			}
			if err := json.Unmarshal([]byte(mustRun(t, "", e, "--envdir", w.a.Envdir, "backup-list", "--json").Stdout), &list); err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].Name != src.backup || list[0].Source != "wal-e" {
				t.Fatalf("backup-list: %+v, want WAL-E's %s marked wal-e", list, src.backup)
			}
			table := mustRun(t, "", e, "--envdir", w.a.Envdir, "backup-list").Stdout
			if !strings.Contains(table, src.backup) || !strings.Contains(table, "wal-e") {
				t.Fatalf("backup-list table does not mark WAL-E's backup:\n%s", table)
			}

			var report struct {
				OK      bool `json:"ok"`
				Backups []struct {
					Name        string `json:"name"`
					Partitions  int    `json:"partitions"`
					Files       int    `json:"files"`
					WALSegments int    `json:"wal_segments"`
					Problems    []any  `json:"problems"`
				} `json:"backups"`
			}
			if err := json.Unmarshal([]byte(mustRun(t, "", e, "--envdir", w.a.Envdir, "backup-verify", "--json", src.backup).Stdout), &report); err != nil {
				t.Fatal(err)
			}
			if b := report.Backups; !report.OK || len(b) != 1 || b[0].Partitions < 2 || b[0].Files < 500 || b[0].WALSegments < 1 || len(b[0].Problems) != 0 {
				t.Fatalf("backup-verify: %+v", report)
			}

			// wal-verify follows the WAL across both layouts: WAL-E's part
			// is no gap.
			wv := run(t, "", e, "--envdir", w.a.Envdir, "wal-verify", "--json")
			var walReport struct {
				Segments int      `json:"segments"`
				Missing  []string `json:"missing"`
				Problems []any    `json:"problems"`
			}
			if err := json.Unmarshal([]byte(wv.Stdout), &walReport); err != nil {
				t.Fatalf("wal-verify --json: %v\n%s", err, wv)
			}
			if wv.Code != 0 || len(walReport.Missing) != 0 || len(walReport.Problems) != 0 || walReport.Segments < 2 {
				t.Fatalf("wal-verify on a mixed archive: %+v\n%s", walReport, wv)
			}

			if w.name == "file" {
				// The drill restores WAL-E's backup to its end and starts it.
				r := mustRun(t, "", e, "--envdir", w.a.Envdir, "backup-verify", "--restore", "--scratch", filepath.Join(testpg.SharedTempDir(t), "drill"), src.backup)
				t.Logf("drill: %s", strings.TrimSpace(r.Stdout))
			}

			dest := filepath.Join(testpg.SharedTempDir(t), "data")
			tsNew := filepath.Join(testpg.SharedTempDir(t), "ts")
			mustRun(t, "", e, "--envdir", w.a.Envdir, "backup-fetch", dest, "LATEST",
				"--recovery-target-name", "wale_target", "--recovery-target-action", "promote",
				"--tablespace-mapping", src.tsOrig+"="+tsNew)
			// WAL-E left the server's configuration files out of its
			// backups; an operator's come from /etc or their own copy.
			for _, f := range []string{"postgresql.conf", "pg_hba.conf", "pg_ident.conf"} {
				b, err := os.ReadFile(filepath.Join(c.DataDir, f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dest, f), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := startRestored(t, w.a, dest)
			if got := phases(t, r, "a"); got != want {
				t.Errorf("table a restored to %q, want %q", got, want)
			}
			if got := phases(t, r, "b"); got != want {
				t.Errorf("table b (tablespace) restored to %q, want %q", got, want)
			}
			if loc := r.QueryString(t, "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'tsp'"); loc != tsNew {
				t.Errorf("tablespace at %q, want %q", loc, tsNew)
			}
			r.Stop(t)
		})
	}

	// A corrupt WAL-E segment stops archive recovery (exit above 125),
	// never reads as "not in the archive".
	t.Run("corrupt-lzo", func(t *testing.T) {
		w := stores[0]
		seg := ""
		for _, e := range walePart {
			if len(e.Name()) == 24 {
				seg = e.Name()
			}
		}
		p := filepath.Join(w.a.Path, "wal_005", seg+".lzo")
		good, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(good)
		bad[len(bad)/2] ^= 0x20
		w.put(t, "wal_005/"+seg+".lzo", bad)
		defer w.put(t, "wal_005/"+seg+".lzo", good)
		dir := testpg.SharedTempDir(t)
		r := run(t, dir, env(w.a, nil), "--envdir", w.a.Envdir, "wal-fetch", seg, filepath.Join(dir, "RECOVERYXLOG"))
		if r.Code <= 125 {
			t.Fatalf("wal-fetch of a corrupt .lzo: %s, want an exit above 125", r)
		}
		if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); !strings.Contains(lines[len(lines)-1], "wal_005/"+seg+".lzo") {
			t.Fatalf("the error does not name the object:\n%s", r.Stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "RECOVERYXLOG")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a corrupt segment was handed over: %v", err)
		}
		// An encrypted WAL-E segment that the user's gpg cannot open (a home
		// without the key): exit above 125, one line naming the key ID.
		empty := filepath.Join(testpg.SharedTempDir(t), "g")
		if err := os.Mkdir(empty, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := testpg.ChownToServer(empty); err != nil {
			t.Fatal(err)
		}
		r = run(t, dir, []string{"WALNUT_PREFIX=" + stores[1].a.Prefix, "GNUPGHOME=" + empty},
			"wal-fetch", seg, filepath.Join(dir, "RECOVERYXLOG"))
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		if last := lines[len(lines)-1]; r.Code <= 125 || !strings.Contains(last, gh.subKeyID) || !strings.Contains(last, "gpg could not decrypt wal_005/"+seg+".lzo") {
			t.Fatalf("wal-fetch of a segment gpg cannot decrypt: %s, want exit > 125 and one line naming key %s", r, gh.subKeyID)
		}
		t.Logf("gpg failure reads: %s", strings.TrimSpace(r.Stderr))

		// The same key exported into walnut's own key setting opens WAL-E's
		// objects without gpg.
		keyFile := filepath.Join(empty, "..", "wale.key")
		passFile := filepath.Join(empty, "..", "wale.pass")
		exported := gpgAsServer(t, gh.dir, nil, "--pinentry-mode", "loopback", "--passphrase", waleGPGPass, "--armor", "--export-secret-keys", gh.keyID)
		for p, b := range map[string][]byte{keyFile: exported, passFile: []byte(waleGPGPass + "\n")} {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := testpg.ChownToServer(p); err != nil {
				t.Fatal(err)
			}
		}
		mustRun(t, dir, []string{"WALNUT_PREFIX=" + stores[1].a.Prefix, "GNUPGHOME=" + empty, "WALNUT_PREFETCH=0",
			"WALNUT_PGP_PRIVATE_KEY_FILE=" + keyFile, "WALNUT_PGP_PASSPHRASE_FILE=" + passFile},
			"wal-fetch", seg, filepath.Join(dir, "RECOVERYXLOG"))
		if fi, err := os.Stat(filepath.Join(dir, "RECOVERYXLOG")); err != nil || fi.Size() != 16<<20 {
			t.Fatalf("wal-fetch with the exported key: %v", err)
		}
		os.Remove(filepath.Join(dir, "RECOVERYXLOG"))

		// backup-verify finds a damaged partition and names it.
		part := "basebackups_005/" + src.backup + "/tar_partitions/part_00000001.tar.lzo"
		pgood, err := os.ReadFile(filepath.Join(w.a.Path, filepath.FromSlash(part)))
		if err != nil {
			t.Fatal(err)
		}
		pbad := bytes.Clone(pgood)
		pbad[len(pbad)/3] ^= 0x01
		w.put(t, part, pbad)
		defer w.put(t, part, pgood)
		r = run(t, "", env(w.a, nil), "--envdir", w.a.Envdir, "backup-verify", src.backup)
		if r.Code != 1 || !strings.Contains(r.Stdout, part) {
			t.Fatalf("backup-verify of a damaged partition: %s", r)
		}
	})

	// delete retires WAL-E's backup and WAL by the same rules as walnut's.
	for _, w := range []*waleArchive{stores[0], stores[2]} {
		t.Run("delete-"+w.name, func(t *testing.T) {
			e := env(w.a, c)
			mustRun(t, "", e, "--envdir", w.a.Envdir, "backup-push", c.DataDir)
			switchAndWaitArchived(t, c)
			before := w.keys(t, "wal_005/")
			mustRun(t, "", e, "--envdir", w.a.Envdir, "delete", "retain", "2", "--confirm")
			kept := w.keys(t, "wal_005/")
			// WAL-E's WAL from its backup's start on stays; older goes.
			startSeg := src.backup[5:29]
			for _, k := range before {
				name := strings.TrimSuffix(strings.TrimPrefix(k, "wal_005/"), ".lzo")
				stays := name[:24] >= startSeg || strings.HasSuffix(name, ".history")
				if has := contains(kept, k); has != stays {
					t.Errorf("retain 2: %s kept=%v, want %v", k, has, stays)
				}
			}
			if len(w.keys(t, "basebackups_005/")) == 0 {
				t.Fatal("retain 2 deleted WAL-E's backup")
			}
			mustRun(t, "", e, "--envdir", w.a.Envdir, "delete", "retain", "1", "--confirm")
			if left := w.keys(t, "basebackups_005/"); len(left) != 0 {
				t.Fatalf("retain 1 left WAL-E's backup: %v", left)
			}
			if left := w.keys(t, "wal_005/"); len(left) != 0 {
				t.Fatalf("retain 1 left WAL-E's WAL, older than the kept backup: %v", left)
			}
			list := mustRun(t, "", e, "--envdir", w.a.Envdir, "backup-list").Stdout
			if strings.Contains(list, src.backup) || strings.Count(strings.TrimSpace(list), "\n") != 1 {
				t.Fatalf("after retain 1:\n%s", list)
			}
		})
	}
}

func contains(list []string, s string) bool {
	i := sort.SearchStrings(list, s)
	return i < len(list) && list[i] == s
}
