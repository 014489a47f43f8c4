package commands

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/commands/pgpsettings"
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
		Description: "Writes " + pgpsettings.PublicKeyFile + " (for the database host, which encrypts) and " + pgpsettings.PrivateKeyFile + " (for the\n" +
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
			err := g.pgp().CreateKeys(g.stdout, name, email, passFile, outDir)
			if pgpsettings.IsBadInput(err) {
				return usageError(err)
			}
			return err
		},
	}
}
