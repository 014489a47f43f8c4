package commands

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/config"
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
}

func (g *globals) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "envdir", Usage: "read variables from a daemontools envdir `DIR` (one file per variable)", Destination: &g.envdir},
		&cli.StringFlag{Name: "env-file", Usage: "read variables from a dotenv `FILE` (KEY=value lines)", Destination: &g.envFile},
		&cli.StringFlag{Name: "prefix", Usage: "archive `URL`, overriding WALNUT_PREFIX", Destination: &g.prefix},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", Destination: &g.logFormat},
		&cli.BoolFlag{Name: "terse", Usage: "log warnings and errors only", Destination: &g.terse},
	}
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
	if g.prefix != "" {
		g.env.Set("WALNUT_PREFIX", g.prefix)
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
	s, err := all.Open(ctx, prefix, g.env.Getenv)
	if err != nil {
		return nil, usageError(err)
	}
	return s, nil
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

// walnutCommand is how PostgreSQL should call this walnut with the same
// configuration: this executable, the same envdir or env file, and the
// prefix when it did not come from those files.
func (g *globals) walnutCommand() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	parts := []string{shellQuote(exe)}
	if g.envdir != "" {
		abs, err := filepath.Abs(g.envdir)
		if err != nil {
			return "", err
		}
		parts = append(parts, "--envdir", shellQuote(abs))
	}
	if g.envFile != "" {
		abs, err := filepath.Abs(g.envFile)
		if err != nil {
			return "", err
		}
		parts = append(parts, "--env-file", shellQuote(abs))
	}
	if g.prefix != "" || (g.envdir == "" && g.envFile == "") {
		prefix, _, err := g.env.Prefix()
		if err != nil {
			return "", usageError(err)
		}
		parts = append(parts, "--prefix", shellQuote(prefix))
	}
	return strings.Join(parts, " "), nil
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
