package commands

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/commands/cliargs"
	"github.com/walnut-pg/walnut/commands/pgpsettings"
	"github.com/walnut-pg/walnut/crypto"
)

// Names of the files keys create writes in --out-dir.
const (
	publicKeyFile  = "walnut-public.asc"
	privateKeyFile = "walnut-private.asc"
)

func keysCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:        "keys",
		Usage:       "manage the OpenPGP keys walnut encrypts with",
		Subcommands: []*cli.Command{keysCreateCommand(g)},
	}
}

func keysCreateCommand(g *globals) *cli.Command {
	var name, email, passFile, outDir string
	return &cli.Command{
		Name:  "create",
		Usage: "generate an OpenPGP key pair for encrypting the archive",
		Description: "Writes " + publicKeyFile + " (for the database host, which encrypts) and " + privateKeyFile + " (for the\n" +
			"restore host, which decrypts) into --out-dir, both armored and mode 0600, and prints the\n" +
			"fingerprint and the variables to put in each host's envdir. The key is ed25519/cv25519 (v4),\n" +
			"which gpg 2.2 and later import, so gpg --decrypt can restore without walnut.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "the key's user `NAME`, e.g. 'walnut archive db1' (required)", Destination: &name},
			&cli.StringFlag{Name: "email", Usage: "the key's `EMAIL` (required)", Destination: &email},
			&cli.StringFlag{Name: "passphrase-file", Usage: "protect the private key with the first line of `FILE` (default: unprotected)", Destination: &passFile},
			&cli.StringFlag{Name: "out-dir", Usage: "write the key files into `DIR` (created 0700 if missing; required)", Destination: &outDir},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageError(fmt.Errorf("keys create: takes no arguments, got %d", c.NArg()))
			}
			if name == "" || email == "" || outDir == "" {
				return usageError(errors.New("keys create: --name, --email and --out-dir are required"))
			}
			return keysCreate(g, name, email, passFile, outDir)
		},
	}
}

func keysCreate(g *globals, name, email, passFile, outDir string) error {
	var pass []byte
	if passFile != "" {
		abs, err := filepath.Abs(passFile)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(abs)
		if err != nil {
			return usageError(fmt.Errorf("keys create: --passphrase-file: %w", err))
		}
		if pass = pgpsettings.FirstLine(b); len(pass) == 0 {
			return usageError(fmt.Errorf("keys create: --passphrase-file %s has an empty first line", abs))
		}
		g.pgp().WarnLoose("--passphrase-file", abs)
		passFile = abs
	}
	dir, err := filepath.Abs(outDir)
	if err != nil {
		return err
	}
	pubPath, privPath := filepath.Join(dir, publicKeyFile), filepath.Join(dir, privateKeyFile)
	for _, p := range []string{pubPath, privPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("keys create: %s already exists; a new key goes in a new --out-dir (keep the old private key for old objects)", p)
		}
	}
	kp, err := crypto.Generate(name, email, pass)
	if err != nil {
		return usageError(fmt.Errorf("keys create: %w", err))
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

	out := g.stdout
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
		pub, priv = filepath.Join(dir, publicKeyFile), filepath.Join(dir, privateKeyFile)
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
