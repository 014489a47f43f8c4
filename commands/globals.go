package commands

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/commands/cliargs"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/config"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/all"
)

// globals holds what every command shares: the environment after the
// global flags are applied, the log, and the output streams.
type globals struct {
	environ        []string
	stdout, stderr io.Writer
	env            *config.Env
	log            *slog.Logger
	logOut         *logSink // stderr, shared with a progress bar

	envdir, envFile, prefix string
	logFormat               string
	terse                   bool
	// command is the command being run, known before any flag is
	// parsed, so that status can answer as a Nagios check even when a
	// global setting stops the run.
	command string
	version bool
	wale    waleGlobals
	// completeWord is the word before --generate-bash-completion: a
	// shell asks for flags by passing the one being typed.
	completeWord string
}

func (g *globals) flags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "envdir", Usage: "read variables from a daemontools envdir `DIR` (one file per variable)", Destination: &g.envdir},
		&cli.StringFlag{Name: "env-file", Usage: "read variables from a dotenv `FILE` (KEY=value lines)", Destination: &g.envFile},
		&cli.StringFlag{Name: "prefix", Usage: "archive `URL`, overriding WALNUT_PREFIX", Destination: &g.prefix},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", Destination: &g.logFormat},
		&cli.BoolFlag{Name: "terse", Usage: "log warnings and errors only", Destination: &g.terse},
		&cli.BoolFlag{Name: "version", Usage: "print the version, as walnut version does", Destination: &g.version},
	}, g.wale.flags()...)
}

func (g *globals) before(c *cli.Context) error {
	g.env = config.New(g.environ)
	if g.envdir != "" {
		if err := g.env.LoadEnvdir(g.envdir); err != nil {
			return usageError(err)
		}
	}
	if g.envFile != "" {
		if err := g.env.LoadEnvFile(g.envFile); err != nil {
			return usageError(err)
		}
	}
	if err := g.wale.apply(g, c); err != nil {
		return err
	}
	level := slog.LevelInfo
	if v := g.env.Getenv("WALNUT_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return usageError(fmt.Errorf("WALNUT_LOG_LEVEL=%q: want debug, info, warn or error", v))
		}
	}
	if g.terse {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	g.logOut = &logSink{w: g.stderr}
	switch g.logFormat {
	case "json":
		g.log = slog.New(slog.NewJSONHandler(g.logOut, opts))
	case "text":
		g.log = slog.New(slog.NewTextHandler(g.logOut, opts))
	default:
		return usageError(fmt.Errorf("--log-format %q: want text or json", g.logFormat))
	}
	return nil
}

// openStore opens the archive named by the prefix.
func (g *globals) openStore(ctx context.Context) (storage.Store, error) {
	prefix, _, err := g.env.Prefix()
	if err != nil {
		return nil, usageError(err)
	}
	s, err := all.Open(ctx, prefix, g.env.Getenv, g.log)
	if err != nil {
		return nil, usageError(err)
	}
	return s, nil
}

// encoding returns how new objects are written: the codec, and the keys
// to encrypt to (nil: stored unencrypted).
func (g *globals) encoding(ctx context.Context) (compression.Codec, *crypto.Recipients, error) {
	codec, err := g.codec()
	if err != nil {
		return nil, nil, err
	}
	to, err := g.pgpRecipients(ctx)
	if err != nil {
		return nil, nil, err
	}
	return codec, to, nil
}

func (g *globals) codec() (compression.Codec, error) {
	spec := g.env.Getenv("WALNUT_COMPRESSION")
	c, err := compression.Parse(spec)
	if err != nil {
		return nil, usageError(fmt.Errorf("WALNUT_COMPRESSION: %w", err))
	}
	return c, nil
}

func (g *globals) intSetting(name string, def int64) (int64, error) {
	n, err := g.env.Int(name, def)
	if err != nil {
		return 0, usageError(err)
	}
	return n, nil
}

// configArgs are the global flags that give another walnut process this
// run's configuration: the envdir and env file by absolute path, and
// --prefix unless the prefix was read from one of those files. A prefix
// from the process environment travels too, because a process PostgreSQL
// starts does not share this one's environment. restore_command and the
// prefetch child are both built from it.
func (g *globals) configArgs() ([]string, error) {
	var args []string
	for _, f := range []struct{ flag, path string }{{"--envdir", g.envdir}, {"--env-file", g.envFile}} {
		if f.path == "" {
			continue
		}
		abs, err := filepath.Abs(f.path)
		if err != nil {
			return nil, err
		}
		args = append(args, f.flag, abs)
	}
	prefix, from, err := g.env.Prefix()
	if err != nil {
		return nil, usageError(err)
	}
	if g.prefix != "" || !g.env.FromFile(from) {
		args = append(args, "--prefix", prefix)
	}
	return args, nil
}

// sizeSetting reads a size in bytes, units allowed (config/size).
func (g *globals) sizeSetting(name string, def int64) (int64, error) {
	n, err := g.env.Size(name, def)
	if err != nil {
		return 0, usageError(err)
	}
	return n, nil
}

// walnutCommand is how PostgreSQL should call this walnut with the same
// configuration, as a shell command line.
func (g *globals) walnutCommand() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	args, err := g.configArgs()
	if err != nil {
		return "", err
	}
	parts := []string{cliargs.ShellQuote(exe)}
	for _, a := range args {
		parts = append(parts, cliargs.ShellQuote(a))
	}
	return strings.Join(parts, " "), nil
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

// pgpRecipients returns the public keys new objects are encrypted to, or
// nil when encryption is off: walnut's public key setting and WAL-E's gpg
// key (WALE_GPG_KEY_ID, --gpg-key-id) together when both are set, so
// either private key opens what is stored. Without either, a private key
// setting encrypts to its first key, as WAL-G's WALG_PGP_KEY does. Only
// writes ask, and a write refuses to run when an encryption setting walnut
// does not use is present, or a gpg key it cannot find.
func (g *globals) pgpRecipients(ctx context.Context) (*crypto.Recipients, error) {
	if err := g.refuseUnusedEncryption(); err != nil {
		return nil, err
	}
	b, from, err := g.keySetting(publicKeySettings, false)
	if err != nil {
		return nil, usageError(err)
	}
	var r *crypto.Recipients
	if b != nil {
		if r, err = crypto.ParseRecipients(b); err != nil {
			return nil, usageError(fmt.Errorf("%s: %w", from, err))
		}
		if r.HasPrivate() {
			g.log.Warn("the public key setting holds a private key: a database host needs only the public key", "setting", from)
		}
	}
	if id := g.env.Getenv("WALE_GPG_KEY_ID"); id != "" {
		gpg, err := exec.LookPath("gpg")
		if err != nil {
			return nil, usageError(fmt.Errorf("WALE_GPG_KEY_ID: gpg key %s: gpg is not in PATH: install gnupg, or encrypt with WALNUT_PGP_PUBLIC_KEY_FILE and unset WALE_GPG_KEY_ID", id))
		}
		gr, err := crypto.GPGRecipient(ctx, gpg, id, g.gpgEnviron())
		if err != nil {
			return nil, usageError(fmt.Errorf("WALE_GPG_KEY_ID: %w", err))
		}
		r = r.Merge(gr)
	}
	if r == nil {
		kr, err := g.pgpKeyring()
		if !kr.HasKeys() || err != nil {
			return nil, err
		}
		if r, err = kr.Recipients(); err != nil {
			return nil, usageError(fmt.Errorf("private key setting: %w", err))
		}
	}
	g.log.Debug("encrypting new objects", "to", strings.Join(r.Fingerprints(), ","))
	return r, nil
}

// gpgEnviron is the environment gpg runs in: the process's, with the gpg
// settings an envdir or env file gives (GNUPGHOME above all).
func (g *globals) gpgEnviron() []string {
	out := make([]string, 0, len(g.environ)+2)
	over := map[string]bool{}
	for _, name := range []string{"GNUPGHOME", "GPG_AGENT_INFO"} {
		if v, ok := g.env.Get(name); ok && g.env.FromFile(name) {
			out = append(out, name+"="+v)
			over[name] = true
		}
	}
	for _, kv := range g.environ {
		if k, _, _ := strings.Cut(kv, "="); !over[k] {
			out = append(out, kv)
		}
	}
	return out
}

// pgpKeyring returns the private keys that decrypt, none when none is
// configured, with the user's gpg behind them for WAL-E's objects.
// Protected keys are unlocked only when an object needs them.
func (g *globals) pgpKeyring() (*crypto.Keyring, error) {
	b, from, err := g.keySetting(privateKeySettings, true)
	if err != nil {
		return nil, usageError(err)
	}
	if b == nil {
		return (*crypto.Keyring)(nil).WithGPG(g.gpgFallback()), nil
	}
	pass, _, err := g.keySetting(passphraseSettings, true)
	if err != nil {
		return nil, usageError(err)
	}
	kr, err := crypto.ParseKeyring(b, pass)
	if err != nil {
		return nil, usageError(fmt.Errorf("%s: %w", from, err))
	}
	return kr.WithGPG(g.gpgFallback()), nil
}

// keySetting returns the value of the first of settings that is set, and
// where it came from. A passphrase is the first line of its file, as gpg's
// --passphrase-file reads it. A secret in a file others may read is
// warned about on every run, so the warning is seen.
func (g *globals) keySetting(settings []keySetting, secret bool) ([]byte, string, error) {
	for _, s := range settings {
		inline := g.env.Getenv(s.inline)
		file := ""
		if s.file != "" {
			file = g.env.Getenv(s.file)
		}
		switch {
		case inline != "" && file != "":
			return nil, "", fmt.Errorf("both %s and %s are set: set one", s.inline, s.file)
		case inline != "":
			if secret && g.env.FromFile(s.inline) {
				g.warnLoose(s.inline, g.settingFile(s.inline))
			}
			return []byte(inline), s.inline, nil
		case file != "":
			b, err := os.ReadFile(file)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", s.file, err)
			}
			if secret {
				g.warnLoose(s.file, file)
			}
			if isPassphrase(s) {
				b = firstLine(b)
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

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return bytes.TrimSuffix(b, []byte("\r"))
}

// settingFile is the envdir or env file a variable was read from.
func (g *globals) settingFile(name string) string {
	if g.envdir != "" {
		p := filepath.Join(g.envdir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return g.envFile
}

// warnLoose warns when path, which holds a secret, is open to group or
// others.
func (g *globals) warnLoose(setting, path string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	g.log.Warn("a file holding a secret is readable by group or others: chmod 600 it", "setting", setting, "path", path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
}

// privateKeyInProcessEnv reports whether the private key setting came from
// the process environment, which a restore_command run by PostgreSQL sees
// only if the server was started with it.
func (g *globals) privateKeyInProcessEnv() bool {
	for _, s := range privateKeySettings {
		for _, name := range []string{s.inline, s.file} {
			if g.env.Getenv(name) != "" {
				return !g.env.FromFile(name)
			}
		}
	}
	return false
}
