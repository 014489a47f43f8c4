package commands

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/commands/cliargs"
	"github.com/walnut-pg/walnut/commands/pgpsettings"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/config"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/all"
	"github.com/walnut-pg/walnut/termprogress"
)

// globals holds what every command shares: the environment after the
// global flags are applied, the log, and the output streams.
type globals struct {
	environ        []string
	stdout, stderr io.Writer
	env            *config.Env
	log            *slog.Logger
	logOut         *termprogress.LogSink // stderr, shared with a progress bar

	envdir, envFile, prefix string
	logFormat               string
	terse                   bool
	// command is the command being run, known before any flag is
	// parsed, so that status can answer as a Nagios check even when a
	// global setting stops the run.
	command string
	version bool
	wale    cliargs.WALEGlobals
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
	}, g.wale.Flags()...)
}

func (g *globals) before(c *cli.Context) error {
	var err error
	if g.env, err = config.Load(g.environ, g.envdir, g.envFile); err != nil {
		return usageError(err)
	}
	if err := g.wale.Apply(g.env, &g.prefix, func(name string) bool { return c != nil && c.IsSet(name) }); err != nil {
		return usageError(err)
	}
	g.logOut = termprogress.NewLogSink(g.stderr)
	if g.log, err = termprogress.NewLogger(g.logOut, g.logFormat, g.env.Getenv("WALNUT_LOG_LEVEL"), g.terse); err != nil {
		return usageError(err)
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
// to encrypt to (nil: stored unencrypted; pgpsettings.Settings.Recipients).
func (g *globals) encoding(ctx context.Context) (compression.Codec, *crypto.Recipients, error) {
	codec, err := compression.Parse(g.env.Getenv("WALNUT_COMPRESSION"))
	if err != nil {
		return nil, nil, usageError(fmt.Errorf("WALNUT_COMPRESSION: %w", err))
	}
	to, err := g.pgp().Recipients(ctx)
	if err != nil {
		return nil, nil, usageError(err)
	}
	return codec, to, nil
}

func (g *globals) intSetting(name string, def int64) (int64, error) {
	n, err := g.env.Int(name, def)
	if err != nil {
		return 0, usageError(err)
	}
	return n, nil
}

// configArgs are the global flags that give another walnut process this
// run's configuration (cliargs.ConfigArgs): --prefix travels unless the
// prefix was read from the envdir or env file.
func (g *globals) configArgs() ([]string, error) {
	prefix, from, err := g.env.Prefix()
	if err != nil {
		return nil, usageError(err)
	}
	return cliargs.ConfigArgs(g.envdir, g.envFile, prefix, g.prefix != "" || !g.env.FromFile(from))
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
	return cliargs.CommandLine(append([]string{exe}, args...)), nil
}

// pgp is this run's encryption settings.
func (g *globals) pgp() *pgpsettings.Settings {
	return &pgpsettings.Settings{Env: g.env, Environ: g.environ, Envdir: g.envdir, EnvFile: g.envFile, Log: g.log}
}

// pgpKeyring returns the private keys that decrypt, with the user's gpg
// behind them for WAL-E's objects.
func (g *globals) pgpKeyring() (*crypto.Keyring, error) {
	kr, err := g.pgp().Keyring()
	return kr, usageError(err)
}
