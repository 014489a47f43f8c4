// Package pgpsettings reads walnut's encryption settings: the public keys
// new objects are encrypted to, the private keys (and the user's gpg, for
// WAL-E's objects) that decrypt, and the settings of other tools walnut
// refuses to ignore; and it makes the key files those settings name
// (walnut keys create). Every error the settings' readers return is a
// setting at fault, which commands reports as a usage error.
package pgpsettings

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/walnut-pg/walnut/config"
	"github.com/walnut-pg/walnut/crypto"
)

// Settings is where the encryption settings are read: the run's
// configuration, the process environment (gpg's), and the envdir and env
// file it was loaded from, for the warning about a secret file others
// may read.
type Settings struct {
	Env             *config.Env
	Environ         []string
	Envdir, EnvFile string
	Log             *slog.Logger
}

// keySetting is a key or passphrase given in the variable itself or in a
// file the other variable names.
type keySetting struct{ inline, file string }

// The settings in order of precedence; WAL-G's names come after walnut's.
var (
	publicKeySettings  = []keySetting{{"WALNUT_PGP_PUBLIC_KEY", "WALNUT_PGP_PUBLIC_KEY_FILE"}}
	privateKeySettings = []keySetting{{"WALNUT_PGP_PRIVATE_KEY", "WALNUT_PGP_PRIVATE_KEY_FILE"}, {"WALG_PGP_KEY", "WALG_PGP_KEY_PATH"}}
	passphraseSettings = []keySetting{{"WALNUT_PGP_PASSPHRASE", "WALNUT_PGP_PASSPHRASE_FILE"}, {"WALG_PGP_KEY_PASSPHRASE", ""}}
)

// Recipients returns the public keys new objects are encrypted to, or
// nil when encryption is off: walnut's public key setting and WAL-E's gpg
// key (WALE_GPG_KEY_ID, --gpg-key-id) together when both are set, so
// either private key opens what is stored. Without either, a private key
// setting encrypts to its first key, as WAL-G's WALG_PGP_KEY does. Only
// writes ask, and a write refuses to run when an encryption setting walnut
// does not use is present, or a gpg key it cannot find.
func (st *Settings) Recipients(ctx context.Context) (*crypto.Recipients, error) {
	if err := st.refuseUnusedEncryption(); err != nil {
		return nil, err
	}
	b, from, err := st.keySetting(publicKeySettings, false)
	if err != nil {
		return nil, err
	}
	var r *crypto.Recipients
	if b != nil {
		if r, err = crypto.ParseRecipients(b); err != nil {
			return nil, fmt.Errorf("%s: %w", from, err)
		}
		if r.HasPrivate() {
			st.Log.Warn("the public key setting holds a private key: a database host needs only the public key", "setting", from)
		}
	}
	if id := st.Env.Getenv("WALE_GPG_KEY_ID"); id != "" {
		gpg, err := exec.LookPath("gpg")
		if err != nil {
			return nil, fmt.Errorf("WALE_GPG_KEY_ID: gpg key %s: gpg is not in PATH: install gnupg, or encrypt with WALNUT_PGP_PUBLIC_KEY_FILE and unset WALE_GPG_KEY_ID", id)
		}
		gr, err := crypto.GPGRecipient(ctx, gpg, id, st.gpgEnviron())
		if err != nil {
			return nil, fmt.Errorf("WALE_GPG_KEY_ID: %w", err)
		}
		r = r.Merge(gr)
	}
	if r == nil {
		kr, err := st.Keyring()
		if !kr.HasKeys() || err != nil {
			return nil, err
		}
		if r, err = kr.Recipients(); err != nil {
			return nil, fmt.Errorf("private key setting: %w", err)
		}
	}
	st.Log.Debug("encrypting new objects", "to", strings.Join(r.Fingerprints(), ","))
	return r, nil
}

// gpgEnviron is the environment gpg runs in: the process's, with the gpg
// settings an envdir or env file gives (GNUPGHOME above all).
func (st *Settings) gpgEnviron() []string {
	out := make([]string, 0, len(st.Environ)+2)
	over := map[string]bool{}
	for _, name := range []string{"GNUPGHOME", "GPG_AGENT_INFO"} {
		if v, ok := st.Env.Get(name); ok && st.Env.FromFile(name) {
			out = append(out, name+"="+v)
			over[name] = true
		}
	}
	for _, kv := range st.Environ {
		if k, _, _ := strings.Cut(kv, "="); !over[k] {
			out = append(out, kv)
		}
	}
	return out
}

// Keyring returns the private keys that decrypt, none when none is
// configured, with the user's gpg behind them for WAL-E's objects.
// Protected keys are unlocked only when an object needs them.
func (st *Settings) Keyring() (*crypto.Keyring, error) {
	b, from, err := st.keySetting(privateKeySettings, true)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return (*crypto.Keyring)(nil).WithGPG(st.gpgFallback()), nil
	}
	pass, _, err := st.keySetting(passphraseSettings, true)
	if err != nil {
		return nil, err
	}
	kr, err := crypto.ParseKeyring(b, pass)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return kr.WithGPG(st.gpgFallback()), nil
}

// keySetting returns the value of the first of settings that is set, and
// where it came from. A passphrase is the first line of its file, as gpg's
// --passphrase-file reads it. A secret in a file others may read is
// warned about on every run, so the warning is seen.
func (st *Settings) keySetting(settings []keySetting, secret bool) ([]byte, string, error) {
	for _, s := range settings {
		inline := st.Env.Getenv(s.inline)
		file := ""
		if s.file != "" {
			file = st.Env.Getenv(s.file)
		}
		switch {
		case inline != "" && file != "":
			return nil, "", fmt.Errorf("both %s and %s are set: set one", s.inline, s.file)
		case inline != "":
			if secret && st.Env.FromFile(s.inline) {
				st.WarnLoose(s.inline, st.settingFile(s.inline))
			}
			return []byte(inline), s.inline, nil
		case file != "":
			b, err := os.ReadFile(file)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", s.file, err)
			}
			if secret {
				st.WarnLoose(s.file, file)
			}
			if isPassphrase(s) {
				b = FirstLine(b)
				if len(b) == 0 {
					return nil, "", fmt.Errorf("%s: %s has an empty first line", s.file, file)
				}
			}
			return b, s.file + "=" + file, nil
		}
	}
	return nil, "", nil
}

func isPassphrase(s keySetting) bool { return s == passphraseSettings[0] }

// FirstLine is b's first line, as gpg's --passphrase-file reads it.
func FirstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return bytes.TrimSuffix(b, []byte("\r"))
}

// settingFile is the envdir or env file a variable was read from.
func (st *Settings) settingFile(name string) string {
	if st.Envdir != "" {
		p := filepath.Join(st.Envdir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return st.EnvFile
}

// WarnLoose warns when path, which holds a secret, is open to group or
// others.
func (st *Settings) WarnLoose(setting, path string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	st.Log.Warn("a file holding a secret is readable by group or others: chmod 600 it", "setting", setting, "path", path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
}

// PrivateKeyInProcessEnv reports whether the private key setting came from
// the process environment, which a restore_command run by PostgreSQL sees
// only if the server was started with it.
func (st *Settings) PrivateKeyInProcessEnv() bool {
	for _, s := range privateKeySettings {
		for _, name := range []string{s.inline, s.file} {
			if st.Env.Getenv(name) != "" {
				return !st.Env.FromFile(name)
			}
		}
	}
	return false
}

// gpgEnvVars are what gpg and its agent read, taken from --envdir or
// --env-file as well, since WAL-E's envdir may set GNUPGHOME.
var gpgEnvVars = []string{"GNUPGHOME", "GPG_AGENT_INFO", "GPG_TTY", "HOME"}

// gpgFallback is the user's gpg, which decrypts WAL-E's encrypted objects
// when no walnut key opens them, or nil when gpg is not installed (the
// error then names the key ID the object needs).
func (st *Settings) gpgFallback() *crypto.GPG {
	path, err := exec.LookPath("gpg")
	if err != nil {
		return nil
	}
	env := make([]string, 0, len(st.Environ)+len(gpgEnvVars))
	for _, kv := range st.Environ {
		name, _, _ := strings.Cut(kv, "=")
		if _, set := st.Env.Get(name); set && isGPGVar(name) {
			continue
		}
		env = append(env, kv)
	}
	for _, name := range gpgEnvVars {
		if v, set := st.Env.Get(name); set {
			env = append(env, name+"="+v)
		}
	}
	return &crypto.GPG{Program: path, Env: env}
}

func isGPGVar(name string) bool {
	for _, v := range gpgEnvVars {
		if v == name {
			return true
		}
	}
	return false
}

// UnusedEncryption are settings with which other tools encrypt what they
// store and walnut does not (yet) understand. An envdir brought over from
// WAL-E or WAL-G keeps working otherwise, so with one of these present a
// write would store plaintext while its operator believes the archive
// encrypted. wal-push and backup-push refuse to run instead.
var UnusedEncryption = map[string]string{
	"WALG_GPG_KEY_ID":              "WAL-G's gpg key",
	"WALG_LIBSODIUM_KEY":           "WAL-G's libsodium key",
	"WALG_LIBSODIUM_KEY_PATH":      "WAL-G's libsodium key",
	"WALG_LIBSODIUM_KEY_TRANSFORM": "WAL-G's libsodium key",
	"WALG_CSE_KMS_ID":              "WAL-G's client-side KMS encryption",
	"WALG_CSE_KMS_REGION":          "WAL-G's client-side KMS encryption",
	"WALG_S3_SSE":                  "WAL-G's S3 server-side encryption (walnut's is WALNUT_S3_SSE)",
	"WALG_S3_SSE_KMS_ID":           "WAL-G's S3 server-side encryption (walnut's is WALNUT_S3_SSE_KMS_ID)",
}

// refuseUnusedEncryption fails when a setting of UnusedEncryption is set,
// naming the first.
func (st *Settings) refuseUnusedEncryption() error {
	var set []string
	for name := range UnusedEncryption {
		if st.Env.Getenv(name) != "" {
			set = append(set, name)
		}
	}
	if len(set) == 0 {
		return nil
	}
	sort.Strings(set)
	name := set[0]
	return fmt.Errorf("%s is set (%s), but walnut does not encrypt with it: refusing to store anything unencrypted; "+
		"encrypt with WALNUT_PGP_PUBLIC_KEY_FILE (see walnut keys create) and unset %s", name, UnusedEncryption[name], name)
}
