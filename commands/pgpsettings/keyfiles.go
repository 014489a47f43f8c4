package pgpsettings

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/walnut-pg/walnut/commands/cliargs"
	"github.com/walnut-pg/walnut/crypto"
)

// Names of the files keys create writes in --out-dir.
const (
	PublicKeyFile  = "walnut-public.asc"
	PrivateKeyFile = "walnut-private.asc"
)

// badInputError is an error of CreateKeys that blames its arguments.
type badInputError struct{ error }

func (e badInputError) Unwrap() error { return e.error }

func badInput(err error) error { return badInputError{err} }

// IsBadInput reports whether err blames the arguments or settings given.
func IsBadInput(err error) bool {
	var b badInputError
	return errors.As(err, &b)
}

// CreateKeys is walnut keys create: it generates a key pair for name
// and email, protected by the first line of passFile if given, writes
// PublicKeyFile and PrivateKeyFile into outDir, and prints to out the
// settings each host needs. An error IsBadInput blames the arguments.
func (st *Settings) CreateKeys(out io.Writer, name, email, passFile, outDir string) error {
	var pass []byte
	if passFile != "" {
		abs, err := filepath.Abs(passFile)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(abs)
		if err != nil {
			return badInput(fmt.Errorf("keys create: --passphrase-file: %w", err))
		}
		if pass = FirstLine(b); len(pass) == 0 {
			return badInput(fmt.Errorf("keys create: --passphrase-file %s has an empty first line", abs))
		}
		st.WarnLoose("--passphrase-file", abs)
		passFile = abs
	}
	dir, err := filepath.Abs(outDir)
	if err != nil {
		return err
	}
	pubPath, privPath := filepath.Join(dir, PublicKeyFile), filepath.Join(dir, PrivateKeyFile)
	for _, p := range []string{pubPath, privPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("keys create: %s already exists; a new key goes in a new --out-dir (keep the old private key for old objects)", p)
		}
	}
	kp, err := crypto.Generate(name, email, pass)
	if err != nil {
		return badInput(fmt.Errorf("keys create: %w", err))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	if err := writeNewFile(pubPath, kp.Public); err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	if err := writeNewFile(privPath, kp.Private); err != nil {
		os.Remove(pubPath)
		return fmt.Errorf("keys create: %w", err)
	}

	fmt.Fprintf(out, "Created an OpenPGP key (%s) for %s <%s>.\n", kp.Algorithm, name, email)
	fmt.Fprintf(out, "Fingerprint: %s\n", kp.Fingerprint)
	protection := "not protected by a passphrase"
	if passFile != "" {
		protection = "protected by the passphrase in " + passFile
	}
	fmt.Fprintf(out, "Public key:  %s\nPrivate key: %s (%s)\n\n", pubPath, privPath, protection)
	pub, priv, passPath := pubPath, privPath, passFile
	if os.Geteuid() == 0 {
		// wal-push and wal-fetch run as the server's user, which cannot
		// read root's files (under /root, say): suggest copies it can.
		const dir = "/etc/walnut"
		files := cliargs.ShellQuote(privPath)
		pub, priv = filepath.Join(dir, PublicKeyFile), filepath.Join(dir, PrivateKeyFile)
		if passFile != "" {
			files += " " + cliargs.ShellQuote(passFile)
			passPath = filepath.Join(dir, filepath.Base(passFile))
		}
		fmt.Fprintf(out, "Created as root: PostgreSQL runs walnut as its own user, which must read the keys. Install them with:\n")
		fmt.Fprintf(out, "  install -d -m 0755 %s\n", dir)
		fmt.Fprintf(out, "  install -m 0644 %s %s  # database host\n", cliargs.ShellQuote(pubPath), pub)
		fmt.Fprintf(out, "  install -m 0600 -o postgres %s %s/  # restore host\n\n", files, dir)
	}
	fmt.Fprintf(out, "Database host, which encrypts and needs only the public key (one envdir file per line):\n")
	fmt.Fprintf(out, "  WALNUT_PGP_PUBLIC_KEY_FILE=%s\n", pub)
	fmt.Fprintf(out, "Restore host, which decrypts:\n")
	fmt.Fprintf(out, "  WALNUT_PGP_PRIVATE_KEY_FILE=%s\n", priv)
	if passPath != "" {
		fmt.Fprintf(out, "  WALNUT_PGP_PASSPHRASE_FILE=%s\n", passPath)
	}
	fmt.Fprintf(out, "\nFor example: echo %s > /etc/walnut/env/WALNUT_PGP_PUBLIC_KEY_FILE\n", cliargs.ShellQuote(pub))
	fmt.Fprintf(out, "Keep a copy of the private key (and its passphrase) offline: without it the archive cannot be read.\n")
	return nil
}

// writeNewFile writes b to a file that must not exist yet, mode 0600
// whatever the umask, synced.
func writeNewFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists", path)
		}
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
