package crypto

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// gpgHome is a throwaway GnuPG home for the real gpg (Debian 12: 2.2.40).
type gpgHome struct {
	dir, passFile string
}

func newGPG(t *testing.T, passphrase string) *gpgHome {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		testpg.Require(t, "gpg", err)
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

// run runs gpg with stdin and returns its stdout.
func (g *gpgHome) run(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	full := append([]string{"--homedir", g.dir, "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase-file", g.passFile}, args...)
	cmd := exec.CommandContext(t.Context(), "gpg", full...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// gpg imports a key made by Generate, with and without a passphrase, lists
// it under its fingerprint as ed25519/cv25519, and decrypts what walnut
// encrypted to it.
func TestGPGReadsGeneratedKeyAndMessages(t *testing.T) {
	for _, pass := range []string{"", "gpg interop passphrase"} {
		kp := testKey(t, "Interop", pass)
		g := newGPG(t, pass)
		g.run(t, kp.Private, "--import")
		list := string(g.run(t, nil, "--with-colons", "--list-secret-keys"))
		if !strings.Contains(list, "fpr:::::::::"+kp.Fingerprint+":") {
			t.Fatalf("gpg does not list the imported key %s:\n%s", kp.Fingerprint, list)
		}
		// Field 4 of sec/ssb is the algorithm: 22 EdDSA, 18 ECDH.
		if !strings.Contains(list, ":255:22:") || !strings.Contains(list, "::ed25519:") ||
			!strings.Contains(list, ":255:18:") || !strings.Contains(list, "::cv25519:") {
			t.Errorf("gpg lists the key with other algorithms than ed25519/cv25519:\n%s", list)
		}

		plain := bytes.Repeat([]byte("walnut to gpg\n"), 100000)
		msg := encrypt(t, recipients(t, kp.Public), plain)
		if got := g.run(t, msg, "--decrypt"); !bytes.Equal(got, plain) {
			t.Fatalf("gpg decrypted %d bytes, want the %d walnut encrypted", len(got), len(plain))
		}
		// The packets are the ones gpg 2.2 knows: SEIPDv1 with MDC (tag
		// 18), no AEAD packet (tag 20), no compression (tag 8).
		packets := string(g.run(t, msg, "--list-packets"))
		if !strings.Contains(packets, ":encrypted data packet:") || !strings.Contains(packets, "mdc_method: 2") {
			t.Errorf("not an MDC-protected SEIPDv1 message:\n%s", packets)
		}
		if strings.Contains(packets, "aead") || strings.Contains(packets, ":compressed packet:") {
			t.Errorf("message uses AEAD or OpenPGP compression:\n%s", packets)
		}
	}
}

// walnut decrypts what gpg encrypted, with keys gpg made, armored and
// binary, including gpg's own compression inside the message.
func TestWalnutReadsGPGKeysAndMessages(t *testing.T) {
	g := newGPG(t, "")
	g.run(t, nil, "--passphrase", "", "--quick-gen-key", "GPG Made <gpg@example.org>", "future-default", "default", "never")
	pubArmored := g.run(t, nil, "--armor", "--export", "gpg@example.org")
	privBinary := g.run(t, nil, "--export-secret-keys", "gpg@example.org")
	privArmored := g.run(t, nil, "--armor", "--export-secret-keys", "gpg@example.org")

	plain := bytes.Repeat([]byte("gpg to walnut\n"), 50000)
	for _, algo := range []string{"none", "zip"} {
		msg := g.run(t, plain, "--trust-model", "always", "--recipient", "gpg@example.org", "--compress-algo", algo, "--encrypt")
		for name, priv := range map[string][]byte{"armored": privArmored, "binary": privBinary} {
			got, err := decryptAll(keyring(t, "", priv), msg)
			if err != nil || !bytes.Equal(got, plain) {
				t.Errorf("gpg message (compression %s) with gpg's %s secret key: %d bytes, %v", algo, name, len(got), err)
			}
		}
	}
	// And gpg reads what walnut encrypts to gpg's public key.
	msg := encrypt(t, recipients(t, pubArmored), plain)
	if got := g.run(t, msg, "--decrypt"); !bytes.Equal(got, plain) {
		t.Fatal("gpg did not decrypt walnut's message to its own key")
	}
}

// withAgent makes g's key reachable only through gpg-agent: the agent
// accepts a preset passphrase, and it is preset for every keygrip, as an
// operator's agent or gpg-preset-passphrase at boot would hold it.
func (g *gpgHome) withAgent(t *testing.T, passphrase string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(g.dir, "gpg-agent.conf"), []byte("allow-preset-passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GNUPGHOME="+g.dir)
	if out, err := exec.Command("gpg-connect-agent", "--homedir", g.dir, "reloadagent", "/bye").CombinedOutput(); err != nil {
		t.Fatalf("gpg-connect-agent: %v\n%s", err, out)
	}
	list := string(g.run(t, nil, "--with-colons", "--with-keygrip", "--list-secret-keys"))
	for _, line := range strings.Split(list, "\n") {
		f := strings.Split(line, ":")
		if f[0] != "grp" {
			continue
		}
		cmd := exec.Command("/usr/lib/gnupg/gpg-preset-passphrase", "--preset", f[9])
		cmd.Env, cmd.Stdin = env, strings.NewReader(passphrase)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gpg-preset-passphrase: %v\n%s", err, out)
		}
	}
}

func gpgDecryptAll(g *GPG, msg []byte) ([]byte, error) {
	ids := RecipientKeyIDs(msg)
	rc, err := g.Decrypt(context.Background(), bytes.NewReader(msg), "wal_005/x.lzo", ids)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// WAL-E's objects are decrypted by the user's gpg: a passphrase-protected
// key held by a running agent works; a home without the key, or a damaged
// message, fails with one line naming the key ID and gpg's reason.
func TestGPGDecryptThroughAgent(t *testing.T) {
	const pass = "agent-held passphrase"
	g := newGPG(t, pass)
	g.run(t, nil, "--quick-gen-key", "WAL-E <wale@example.org>", "rsa2048", "default", "never")
	g.run(t, nil, "--quick-add-key", mustFpr(t, g), "rsa2048", "encrypt", "never")
	g.withAgent(t, pass)
	plain := bytes.Repeat([]byte("lzop'd WAL\n"), 80000)
	msg := g.run(t, plain, "--trust-model", "always", "-e", "-z", "0", "-r", "wale@example.org")
	if !IsOpenPGPMessage(msg) {
		t.Fatal("gpg -e output not recognised as an OpenPGP message")
	}
	ids := RecipientKeyIDs(msg)
	if len(ids) != 1 || len(ids[0]) != 16 {
		t.Fatalf("recipient key IDs %q, want one", ids)
	}
	gpgPath, _ := exec.LookPath("gpg")
	env := append(os.Environ(), "GNUPGHOME="+g.dir)
	got, err := gpgDecryptAll(&GPG{Program: gpgPath, Env: env}, msg)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decrypt through the agent: %d bytes, %v", len(got), err)
	}

	other := newGPG(t, "")
	_, err = gpgDecryptAll(&GPG{Program: gpgPath, Env: append(os.Environ(), "GNUPGHOME="+other.dir)}, msg)
	var ge *GPGError
	if !errors.As(err, &ge) || !strings.Contains(err.Error(), ids[0]) || !strings.Contains(err.Error(), "No secret key") {
		t.Fatalf("home without the key: %v, want a GPGError naming %s and gpg's reason", err, ids[0])
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
	bad := bytes.Clone(msg)
	bad[len(bad)-30] ^= 0x55
	if _, err := gpgDecryptAll(&GPG{Program: gpgPath, Env: env}, bad); err == nil {
		t.Fatal("damaged message decrypted without an error")
	}
	if IsOpenPGPMessage([]byte("\x89LZO\x00\r\n\x1a\n")) {
		t.Fatal("lzop magic taken for an OpenPGP message")
	}
}

func mustFpr(t *testing.T, g *gpgHome) string {
	t.Helper()
	for _, line := range strings.Split(string(g.run(t, nil, "--with-colons", "--list-secret-keys")), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" {
			return f[9]
		}
	}
	t.Fatal("no fingerprint")
	return ""
}
