package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/walnut-pg/walnut/internal/testpg"
)

// pgpKeys is a key pair made by `walnut keys create`, in files the server
// user owns, as an operator would set it up.
type pgpKeys struct {
	Public, Private, PassFile, Pass, Fingerprint string
}

func createKeys(t *testing.T, passphrase string) *pgpKeys {
	t.Helper()
	dir := testpg.SharedTempDir(t)
	k := &pgpKeys{Pass: passphrase}
	args := []string{"keys", "create", "--name", "walnut e2e", "--email", "e2e@example.org", "--out-dir", filepath.Join(dir, "keys")}
	if passphrase != "" {
		k.PassFile = filepath.Join(dir, "passphrase")
		if err := os.WriteFile(k.PassFile, []byte(passphrase+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := testpg.ChownToServer(k.PassFile); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--passphrase-file", k.PassFile)
	}
	r := mustRun(t, "", nil, args...)
	m := regexp.MustCompile(`Fingerprint: ([0-9A-F]{40})\n`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("keys create printed no fingerprint:\n%s", r.Stdout)
	}
	k.Fingerprint = m[1]
	k.Public, k.Private = filepath.Join(dir, "keys", "walnut-public.asc"), filepath.Join(dir, "keys", "walnut-private.asc")
	for _, p := range []string{k.Public, k.Private} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("keys create did not write %s: %v\n%s", p, err, r.Stdout)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", p, fi.Mode().Perm())
		}
	}
	if !strings.Contains(r.Stdout, "WALNUT_PGP_PUBLIC_KEY_FILE="+k.Public) || !strings.Contains(r.Stdout, "WALNUT_PGP_PRIVATE_KEY_FILE="+k.Private) {
		t.Errorf("keys create does not print the envdir settings:\n%s", r.Stdout)
	}
	if passphrase != "" && strings.Contains(r.String(), passphrase) {
		t.Errorf("keys create printed the passphrase:\n%s", r)
	}
	return k
}

// pushEnv is what a database host holds: the public key only.
func (k *pgpKeys) pushEnv() []string { return []string{"WALNUT_PGP_PUBLIC_KEY_FILE=" + k.Public} }

// fetchEnv is what a restore host holds.
func (k *pgpKeys) fetchEnv() []string {
	e := []string{"WALNUT_PGP_PRIVATE_KEY_FILE=" + k.Private}
	if k.PassFile != "" {
		e = append(e, "WALNUT_PGP_PASSPHRASE_FILE="+k.PassFile)
	}
	return e
}

// writeEnvdir writes NAME=value settings as a daemontools envdir the server
// user owns.
func writeEnvdir(t *testing.T, settings ...string) string {
	t.Helper()
	dir := filepath.Join(testpg.SharedTempDir(t), "env")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		name, value, _ := strings.Cut(s, "=")
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := testpg.ChownToServer(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// encryptedCluster starts a cluster whose archive_command pushes into a,
// encrypted to k, configured through an envdir as a WAL-E site would be.
// It returns the cluster and the envdir.
func encryptedCluster(t *testing.T, a *archive, k *pgpKeys, settings ...string) (*testpg.Cluster, string) {
	t.Helper()
	envdir := writeEnvdir(t, append(append([]string{"WALNUT_PREFIX=" + a.Prefix}, k.pushEnv()...), settings...)...)
	c := testpg.New(t, testpg.Options{Conf: map[string]string{
		"archive_mode":    "on",
		"archive_command": walnutBin + " --envdir " + envdir + " wal-push %p",
		"archive_timeout": "0",
	}})
	return c, envdir
}

// archiveFiles lists every object in a's directory, relative to it.
func archiveFiles(t *testing.T, a *archive) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(a.Path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(a.Path, p)
		out = append(out, rel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// recipientKeyID is the key ID an encrypted object names in its first
// packet, read independently of walnut.
func recipientKeyID(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := packet.NewReader(f).Next()
	if err != nil {
		t.Fatal(err)
	}
	ek, ok := p.(*packet.EncryptedKey)
	if !ok {
		t.Fatalf("%s starts with a %T, not a public-key encrypted session key", path, p)
	}
	return fmt.Sprintf("%016X", ek.KeyId)
}

// The PITR story with encryption on: the database host holds only the
// public key, the restore host the private key behind a passphrase, both
// through envdirs. Nothing in the archive but the sentinel and walnut.json
// is readable without the key, and those hold no table data.
func TestEncryptedPITR(t *testing.T) {
	const marker = "walnut-secret-row-3b9e71"
	a := newArchive(t)
	keys := createKeys(t, "restore host passphrase 42")
	// No compression, so any plaintext that reached the archive would be
	// there byte for byte.
	src, pushDir := encryptedCluster(t, a, keys, "WALNUT_COMPRESSION=none")
	src.Pgbench(t, "-i", "-s", "2", "-q")
	src.Exec(t, "CREATE TABLE secrets AS SELECT g AS id, '"+marker+"' AS v FROM generate_series(1, 1000) g")
	name := strings.TrimSpace(mustRun(t, "", src.Env(), "--envdir", pushDir, "backup-push", src.DataDir).Stdout)

	src.Pgbench(t, "-n", "-t", "200", "postgres")
	want := src.QueryString(t, tableDigest)
	src.Exec(t, "SELECT pg_create_restore_point('before_drop')")
	src.Exec(t, "DROP TABLE pgbench_accounts")
	switchAndWaitArchived(t, src)

	files := archiveFiles(t, a)
	for _, f := range files {
		plain := f == "walnut.json" || f == "backups/"+name+".json"
		if !plain && !strings.HasSuffix(f, ".pgp") {
			t.Errorf("%s is stored unencrypted", f)
		}
		if b := readFile(t, filepath.Join(a.Path, f)); bytes.Contains(b, []byte(marker)) {
			t.Errorf("%s holds table data in the clear", f)
		}
	}
	for _, want := range []string{"backups/" + name + "/part_0001.tar.pgp", "backups/" + name + "/pg_control.tar.pgp", "backups/" + name + "/files.json.pgp", "backups/" + name + "/backup_manifest.pgp"} {
		if !slices.Contains(files, want) {
			t.Errorf("archive lacks %s: %v", want, files)
		}
	}
	// The database host lists backups without any private key.
	var list []struct {
		Name      string `json:"name"`
		Encrypted bool   `json:"encrypted"`
	}
	out := mustRun(t, "", env(a, nil), "backup-list", "--json").Stdout
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].Name != name || !list[0].Encrypted {
		t.Errorf("backup-list --json without a key: %v\n%s", err, out)
	}

	// The restore host: the private key reaches wal-fetch through the
	// envdir named in the restore_command backup-fetch writes.
	restoreDir := writeEnvdir(t, append([]string{"WALNUT_PREFIX=" + a.Prefix}, keys.fetchEnv()...)...)
	dest := filepath.Join(a.Dir, "restored")
	r := mustRun(t, "", nil, "--envdir", restoreDir, "backup-fetch", dest, "LATEST",
		"--recovery-target-name", "before_drop", "--recovery-target-action", "promote")
	if !strings.Contains(r.Stdout, "--envdir "+restoreDir+" wal-fetch") {
		t.Errorf("restore_command does not carry the envdir:\n%s", r.Stdout)
	}
	auto := string(readFile(t, filepath.Join(dest, "postgresql.auto.conf")))
	if strings.Contains(auto, keys.Pass) || strings.Contains(auto, "PGP") {
		t.Errorf("postgresql.auto.conf holds key material:\n%s", auto)
	}
	verifyBackup(t, dest)
	restored := startRestored(t, a, dest)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("restored data digest %s, want %s as at the restore point", got, want)
	}
	if log := restored.LogTail(200); !strings.Contains(log, "restored log file") {
		t.Errorf("the restored server replayed no WAL from the archive:\n%s", log)
	}
}

// gpgHome is a throwaway GnuPG home for Debian's gpg, as an operator
// without walnut would use it.
type gpgHome struct{ dir, passFile string }

func newGPG(t *testing.T, passphrase string) *gpgHome {
	t.Helper()
	for _, tool := range []string{"gpg", "zstd", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			testpg.Require(t, tool, err)
		}
	}
	dir := t.TempDir()
	g := &gpgHome{dir: filepath.Join(dir, "gnupg"), passFile: filepath.Join(dir, "pass")}
	if err := os.Mkdir(g.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(g.passFile, []byte(passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", g.dir, "--kill", "all").Run() })
	return g
}

// shell runs a bash pipeline with gpg set to this home ($GPG).
func (g *gpgHome) shell(t *testing.T, script string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "bash", "-c", "set -euo pipefail\n"+script)
	cmd.Env = append(os.Environ(), "GPG=gpg --homedir "+g.dir+" --batch --no-tty --pinentry-mode loopback --passphrase-file "+g.passFile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	return stdout.Bytes()
}

// What walnut stores, gpg and zstd read: an operator who has lost walnut
// decrypts the backup by hand (gpg --decrypt | zstd -d | tar x) into a
// directory that pg_verifybackup accepts.
func TestEncryptedBackupDecryptsWithGPG(t *testing.T) {
	a := newArchive(t)
	keys := createKeys(t, "by hand")
	src, pushDir := encryptedCluster(t, a, keys, "WALNUT_PARTITION_SIZE=4194304")
	src.Pgbench(t, "-i", "-s", "2", "-q")
	name := strings.TrimSpace(mustRun(t, "", src.Env(), "--envdir", pushDir, "backup-push", src.DataDir).Stdout)

	g := newGPG(t, keys.Pass)
	g.shell(t, "$GPG --import "+keys.Private)
	bdir := filepath.Join(a.Path, "backups", name)
	parts, _ := filepath.Glob(filepath.Join(bdir, "part_*.tar.zst.pgp"))
	slices.Sort(parts)
	if len(parts) < 2 {
		t.Fatalf("want several encrypted partitions, got %v", parts)
	}
	listing := string(g.shell(t, "$GPG --decrypt "+parts[0]+" | zstd -dc | tar -tf -"))
	if !strings.Contains(listing, "base/") {
		t.Errorf("tar -t of the first partition lists no base/ files:\n%.2000s", listing)
	}

	dest := filepath.Join(a.Dir, "by-hand")
	script := "mkdir -m 0700 " + dest + "\n"
	for _, p := range append(parts, filepath.Join(bdir, "pg_control.tar.zst.pgp")) {
		script += "$GPG --decrypt " + p + " | zstd -dc | tar -xf - -C " + dest + "\n"
	}
	script += "$GPG --decrypt " + filepath.Join(bdir, "backup_manifest.zst.pgp") + " | zstd -dc > " + dest + "/backup_manifest\n"
	g.shell(t, script)
	verifyBackup(t, dest)
	if _, err := os.Stat(filepath.Join(dest, "global", "pg_control")); err != nil {
		t.Fatal(err)
	}
}

// WAL both ways between walnut and gpg: a segment walnut pushed decrypts
// with gpg and zstd to the original bytes; a segment gpg encrypted to a
// key from keys create, put where walnut looks, is fetched and checked.
func TestWALInteropWithGPG(t *testing.T) {
	c := testpg.New(t, testpg.Options{})
	a := newArchive(t)
	keys := createKeys(t, "")
	g := newGPG(t, "")

	seg := completeSegment(t, c)
	segBytes := readFile(t, seg)
	mustRun(t, "", env(a, nil, keys.pushEnv()...), "wal-push", seg)
	objs := walObjects(t, a, filepath.Base(seg))
	if len(objs) != 1 || !strings.HasSuffix(objs[0], walDigest(segBytes)+".zst.pgp") {
		t.Fatalf("encrypted push stored %v", objs)
	}
	g.shell(t, "$GPG --import "+keys.Private)
	if got := g.shell(t, "$GPG --decrypt "+objs[0]+" | zstd -dc"); !bytes.Equal(got, segBytes) {
		t.Fatalf("gpg --decrypt | zstd -d of %s gave %d bytes unlike the segment's %d", objs[0], len(got), len(segBytes))
	}

	// gpg encrypts with its own defaults (ZIP inside, to the subkey of a
	// key it only has the public half of).
	g2 := newGPG(t, "")
	g2.shell(t, "$GPG --import "+keys.Public)
	other := completeSegment(t, c)
	otherBytes := readFile(t, other)
	name := filepath.Base(other)
	for _, tc := range []struct{ ext, pipe string }{
		{".zst.pgp", "zstd -qc " + other + " | $GPG --trust-model always -r " + keys.Fingerprint + " --encrypt"},
		{".pgp", "$GPG --trust-model always -r " + keys.Fingerprint + " --encrypt < " + other},
	} {
		t.Run(tc.ext, func(t *testing.T) {
			b := newArchive(t)
			key := filepath.Join(b.Path, "wal", name+"-"+walDigest(otherBytes)+tc.ext)
			if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(key, g2.shell(t, tc.pipe), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := testpg.ChownToServer(b.Path); err != nil {
				t.Fatal(err)
			}
			work := testpg.SharedTempDir(t)
			mustRun(t, work, env(b, nil, keys.fetchEnv()...), "wal-fetch", name, "RECOVERYXLOG")
			if !bytes.Equal(readFile(t, filepath.Join(work, "RECOVERYXLOG")), otherBytes) {
				t.Fatalf("wal-fetch of gpg's %s wrote other bytes than the segment", filepath.Base(key))
			}
		})
	}
}

// Key rotation: WAL pushed to the old key and to the new one both fetch
// with a keyring of the two private keys; the new key alone cannot read
// the old object and says which key it needs. WAL-G's variable names
// work, and an armored key in an envdir (first line only) is refused
// clearly.
func TestKeyRotationAndWALGNames(t *testing.T) {
	a := newArchive(t)
	oldKey, newKey := createKeys(t, ""), createKeys(t, "")
	h1 := writeShared(t, "00000002.history", []byte("1\t0/3000108\tno recovery target specified\n"))
	h2 := writeShared(t, "00000003.history", []byte("1\t0/3000108\tno recovery target specified\n2\t0/5000108\tno recovery target specified\n"))
	mustRun(t, "", env(a, nil, oldKey.pushEnv()...), "wal-push", h1)
	mustRun(t, "", env(a, nil, newKey.pushEnv()...), "wal-push", h2)

	dir := testpg.SharedTempDir(t)
	ring := filepath.Join(dir, "keyring.asc")
	if err := os.WriteFile(ring, append(readFile(t, newKey.Private), readFile(t, oldKey.Private)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(ring); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{h1, h2} {
		dest := filepath.Join(dir, "got-"+filepath.Base(h))
		mustRun(t, dir, env(a, nil, "WALNUT_PGP_PRIVATE_KEY_FILE="+ring), "wal-fetch", filepath.Base(h), dest)
		if !bytes.Equal(readFile(t, dest), readFile(t, h)) {
			t.Errorf("%s fetched with the keyring differs", filepath.Base(h))
		}
	}
	oldObj := walObjects(t, a, "00000002.history")[0]
	r := run(t, dir, env(a, nil, newKey.fetchEnv()...), "wal-fetch", "00000002.history", filepath.Join(dir, "x"))
	if id := recipientKeyID(t, oldObj); r.Code == 0 || !strings.Contains(r.Stderr, id) {
		t.Errorf("old object with only the new key: want an error naming key ID %s, got %s", id, r)
	}

	// WAL-G: WALG_PGP_KEY holds the private key itself and serves both
	// pushing and fetching; WALNUT_PGP_PUBLIC_KEY holds an armored key.
	priv, pub := string(readFile(t, newKey.Private)), string(readFile(t, newKey.Public))
	h4 := writeShared(t, "00000004.history", []byte("3\t0/7000108\tno recovery target specified\n"))
	h5 := writeShared(t, "00000005.history", []byte("4\t0/9000108\tno recovery target specified\n"))
	mustRun(t, "", env(a, nil, "WALG_PGP_KEY="+priv), "wal-push", h4)
	mustRun(t, "", env(a, nil, "WALNUT_PGP_PUBLIC_KEY="+pub), "wal-push", h5)
	for _, h := range []string{h4, h5} {
		objs := walObjects(t, a, filepath.Base(h))
		if len(objs) != 1 || !strings.HasSuffix(objs[0], ".pgp") {
			t.Fatalf("push of %s stored %v, want one .pgp object", filepath.Base(h), objs)
		}
		dest := filepath.Join(dir, "walg-"+filepath.Base(h))
		mustRun(t, dir, env(a, nil, "WALG_PGP_KEY_PATH="+newKey.Private), "wal-fetch", filepath.Base(h), dest)
		if !bytes.Equal(readFile(t, dest), readFile(t, h)) {
			t.Errorf("%s fetched with WALG_PGP_KEY_PATH differs", filepath.Base(h))
		}
	}

	envdir := writeEnvdir(t, "WALNUT_PREFIX="+a.Prefix, "WALNUT_PGP_PUBLIC_KEY="+pub)
	r = run(t, "", nil, "--envdir", envdir, "wal-push", writeShared(t, "00000006.history", []byte("x\n")))
	if r.Code != 2 || !strings.Contains(r.Stderr, "WALNUT_PGP_PUBLIC_KEY") || !strings.Contains(r.Stderr, "first line") {
		t.Errorf("armored key in an envdir file: want exit 2 explaining the first-line rule, got %s", r)
	}

	// A private key file others can read is warned about, without its content.
	if err := os.Chmod(newKey.Private, 0o644); err != nil {
		t.Fatal(err)
	}
	r = mustRun(t, dir, env(a, nil, newKey.fetchEnv()...), "wal-fetch", "00000003.history", filepath.Join(dir, "loose"))
	if !strings.Contains(r.Stderr, "readable by group or others") || !strings.Contains(r.Stderr, newKey.Private) {
		t.Errorf("no warning for a private key file with mode 0644:\n%s", r)
	}
	if strings.Contains(r.Stderr, "PRIVATE KEY BLOCK") {
		t.Errorf("key material in the output:\n%s", r)
	}
}

// Each way decryption can fail is one clear line and a non-zero exit, and
// leaves nothing at DEST: no WAL file for PostgreSQL, no data directory
// that looks restored.
func TestEncryptionErrors(t *testing.T) {
	const pass = "the right passphrase"
	a := newArchive(t)
	keys := createKeys(t, pass)
	other := createKeys(t, "")
	src, pushDir := encryptedCluster(t, a, keys)
	src.Pgbench(t, "-i", "-s", "1", "-q")
	// backup-push returns once the WAL it needs is archived.
	name := strings.TrimSpace(mustRun(t, "", src.Env(), "--envdir", pushDir, "backup-push", src.DataDir).Stdout)

	var sn struct {
		StartSegment string `json:"wal_segment_backup_start"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(a.Path, "backups", name+".json")), &sn); err != nil {
		t.Fatal(err)
	}
	segObjs := walObjects(t, a, sn.StartSegment)
	if len(segObjs) != 1 {
		t.Fatalf("segment %s: objects %v", sn.StartSegment, segObjs)
	}
	keyID := recipientKeyID(t, segObjs[0])
	wrongPass := filepath.Join(testpg.SharedTempDir(t), "wrong-pass")
	if err := os.WriteFile(wrongPass, []byte("not "+pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(wrongPass); err != nil {
		t.Fatal(err)
	}

	// fails runs wal-fetch and backup-fetch with settings and checks how
	// they fail.
	fails := func(t *testing.T, settings []string, walMention, backupMention string) {
		t.Helper()
		work := testpg.SharedTempDir(t)
		dest := filepath.Join(work, "RECOVERYXLOG")
		r := run(t, work, env(a, nil, settings...), "--terse", "wal-fetch", sn.StartSegment, dest)
		// 200: archive recovery must stop, not take this for "not archived".
		if r.Code != 200 {
			t.Errorf("wal-fetch: want exit 200, got %s", r)
		}
		t.Logf("wal-fetch: %s", strings.TrimSpace(r.Stderr))
		assertOneLine(t, r, walMention)
		assertAbsent(t, dest)
		if m, _ := filepath.Glob(filepath.Join(work, ".*walnut-tmp*")); len(m) != 0 {
			t.Errorf("wal-fetch left temp files %v", m)
		}

		restored := filepath.Join(work, "restored")
		// --no-recovery: no restore_command, so no warning that these
		// settings would not reach one; the error is the only line.
		r = run(t, "", env(a, nil, settings...), "--terse", "backup-fetch", "--no-recovery", restored, name)
		if r.Code != 1 {
			t.Errorf("backup-fetch: want exit 1, got %s", r)
		}
		t.Logf("backup-fetch: %s", strings.TrimSpace(r.Stderr))
		assertOneLine(t, r, backupMention)
		assertEmptyOrAbsent(t, restored)
		if strings.Contains(r.String(), pass) {
			t.Errorf("the passphrase appears in the output:\n%s", r)
		}
	}

	t.Run("no private key", func(t *testing.T) {
		fails(t, nil, "no private key", "no private key")
	})
	t.Run("wrong key", func(t *testing.T) {
		fails(t, other.fetchEnv(), keyID, keyID)
	})
	t.Run("wrong passphrase", func(t *testing.T) {
		fails(t, []string{"WALNUT_PGP_PRIVATE_KEY_FILE=" + keys.Private, "WALNUT_PGP_PASSPHRASE_FILE=" + wrongPass}, "wrong passphrase", "wrong passphrase")
	})
	t.Run("no passphrase", func(t *testing.T) {
		fails(t, []string{"WALNUT_PGP_PRIVATE_KEY_FILE=" + keys.Private}, "passphrase", "passphrase")
	})

	// Tampering last: it changes the archive. The MDC trailer is the
	// last 22 bytes of a message; a flip there leaves every compressed
	// byte intact, so only the OpenPGP integrity check can catch it, at
	// the very end of the stream.
	flip := func(t *testing.T, p string, at func(n int) int) {
		t.Helper()
		b := readFile(t, p)
		b[at(len(b))] ^= 0x01
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("tampered", func(t *testing.T) {
		flip(t, segObjs[0], func(n int) int { return n - 3 })
		flip(t, filepath.Join(a.Path, "backups", name, "part_0001.tar.zst.pgp"), func(n int) int { return n - 3 })
		fails(t, keys.fetchEnv(), "integrity check failed", "integrity check failed")
	})
}

// assertOneLine checks a failed run printed exactly one line on stderr,
// mentioning want.
func assertOneLine(t *testing.T, r result, want string) {
	t.Helper()
	msg := strings.TrimSpace(r.Stderr)
	if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "walnut: ") {
		t.Errorf("want exactly one line starting with \"walnut: \" on stderr, got:\n%s", r.Stderr)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("error does not mention %q: %s", want, msg)
	}
}
