package commands

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/internal/testpg"
)

// newGPGHome makes a throwaway gpg home holding one key pair without a
// passphrase, as a WAL-E user's `gpg --gen-key` left it, and returns the
// home and the key's fingerprint.
func newGPGHome(t *testing.T, uid string) (home, fpr string) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		testpg.Require(t, "gpg", err)
	}
	home = filepath.Join(t.TempDir(), "gnupg")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run() })
	gpg(t, home, nil, "--passphrase", "", "--quick-gen-key", uid, "future-default", "default", "never")
	for _, l := range strings.Split(string(gpg(t, home, nil, "--with-colons", "--list-keys", uid)), "\n") {
		if f := strings.Split(l, ":"); len(f) > 9 && f[0] == "fpr" {
			return home, f[9]
		}
	}
	t.Fatalf("gpg lists no fingerprint for %s", uid)
	return "", ""
}

func gpg(t *testing.T, home string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "gpg", append([]string{"--homedir", home, "--batch", "--no-tty", "--pinentry-mode", "loopback"}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// WALE_GPG_KEY_ID (or --gpg-key-id) encrypts what wal-push stores to the
// key gpg's keyring holds, found through GNUPGHOME from the environment or
// the envdir: gpg --decrypt opens the object, and walnut's own private key
// setting, given the same key, reads it back.
func TestWALEGPGKeyEncrypts(t *testing.T) {
	home, fpr := newGPGHome(t, "walnut wale test <wale@example.invalid>")
	envdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(envdir, "GNUPGHOME"), []byte(home+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  []string
		args []string
	}{
		{"WALE_GPG_KEY_ID, GNUPGHOME in the environment", []string{"GNUPGHOME=" + home, "WALE_GPG_KEY_ID=" + fpr}, nil},
		{"--gpg-key-id with an address, GNUPGHOME in the envdir", nil, []string{"--envdir", envdir, "--gpg-key-id", "wale@example.invalid"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			seg := fixture.Segment(t, t.TempDir(), "000000010000000000000001", 7)
			plain, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			env := append([]string{"WALE_FILE_PREFIX=file://" + dir, "WALNUT_COMPRESSION=none", "PATH=" + os.Getenv("PATH")}, c.env...)
			if code, _, stderr := walnutRun(t, env, append(c.args, "wal-push", seg)...); code != ExitOK {
				t.Fatalf("wal-push: exit %d: %s", code, stderr)
			}
			keys := fixture.Keys(t, openLocal(t, dir), "wal/")
			if len(keys) != 1 || !strings.HasSuffix(keys[0], ".pgp") {
				t.Fatalf("wal-push stored %v, want one encrypted object", keys)
			}
			stored := fixture.Object(t, openLocal(t, dir), keys[0])
			if bytes.Contains(stored, plain[:64]) {
				t.Fatal("the stored object holds the segment's plaintext")
			}
			if got := gpg(t, home, stored, "--decrypt"); !bytes.Equal(got, plain) {
				t.Fatalf("gpg --decrypt gave %d bytes, want the %d of the segment", len(got), len(plain))
			}
			secret := gpg(t, home, nil, "--passphrase", "", "--armor", "--export-secret-keys", fpr)
			dest := filepath.Join(t.TempDir(), "seg")
			fetchEnv := append(env, "WALNUT_PGP_PRIVATE_KEY="+string(secret))
			if code, _, stderr := walnutRun(t, fetchEnv, append(c.args, "wal-fetch", "000000010000000000000001", dest)...); code != ExitOK {
				t.Fatalf("wal-fetch with the exported private key: exit %d: %s", code, stderr)
			}
			if got, _ := os.ReadFile(dest); !bytes.Equal(got, plain) {
				t.Fatal("wal-fetch wrote other bytes than the segment")
			}
		})
	}
}

// A gpg key that cannot be found stops every write, with one line naming
// it, and nothing is stored: no gpg key in the keyring, and no gpg.
func TestWALEGPGKeyMissing(t *testing.T) {
	home, _ := newGPGHome(t, "walnut other <other@example.invalid>")
	seg := fixture.Segment(t, t.TempDir(), "000000010000000000000001", 7)
	noGPG := t.TempDir()
	for _, c := range []struct {
		name, keyID, path string
		mentions          []string
	}{
		{"unknown key", "0123456789ABCDEF", os.Getenv("PATH"), []string{"0123456789ABCDEF", "not in the gpg keyring"}},
		{"unknown address", "nobody@example.invalid", os.Getenv("PATH"), []string{"nobody@example.invalid"}},
		{"no gpg", "other@example.invalid", noGPG, []string{"other@example.invalid", "gpg is not in PATH"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("PATH", c.path)
			dir := t.TempDir()
			env := []string{"WALE_FILE_PREFIX=file://" + dir, "GNUPGHOME=" + home, "WALE_GPG_KEY_ID=" + c.keyID, "PATH=" + c.path}
			for _, args := range [][]string{{"wal-push", seg}, {"backup-push", t.TempDir()}} {
				code, _, stderr := walnutRun(t, env, args...)
				line := strings.TrimSpace(stderr)
				if code != ExitUsage || strings.Contains(line, "\n") {
					t.Errorf("%s: exit %d, want %d with one line: %s", args[0], code, ExitUsage, line)
				}
				for _, m := range c.mentions {
					if !strings.Contains(line, m) {
						t.Errorf("%s: %q does not mention %q", args[0], line, m)
					}
				}
			}
			if keys := fixture.Keys(t, openLocal(t, dir), "wal/"); len(keys) != 0 {
				t.Errorf("stored %v", keys)
			}
		})
	}
}
