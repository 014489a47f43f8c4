// Package commands turns command lines into calls of the job packages
// (wal, basebackup, restore, retention, verify, check), and errors into output and exit
// codes. It is the only place, with main, that decides how the process
// ends.
package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/commands/cliargs"
	"github.com/walnut-pg/walnut/commands/clidoc"
)

// Main runs walnut with args and the process environment, and returns the
// exit code.
func Main(args, environ []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals{environ: environ, stdout: stdout, stderr: stderr}
	app := newApp(g)
	args = cliargs.SplitAttached(app, args)
	g.command = cliargs.CommandName(app, args)
	if n := len(args); n > 1 && args[n-1] == clidoc.CompletionFlag {
		g.completeWord = args[n-2] // a shell asks for candidates: flags, if this is one
	}
	err := app.RunContext(ctx, cliargs.Interspersed(app, args))
	if err == nil {
		return ExitOK
	}
	var q *quietError
	if errors.As(err, &q) {
		return q.code
	}
	code := exitCode(err)
	msg := err.Error()
	if errors.Is(err, archive.ErrNotAnArchive) && g.env != nil {
		// The one thing to check is the prefix: name it.
		prefix, _, _ := g.env.Prefix()
		msg = prefix + ": " + archive.ErrNotAnArchive.Error()
	}
	if g.command == "status" {
		// A Nagios check: the first line of stdout says why, and a
		// check that could not run is UNKNOWN, whatever stopped it.
		fmt.Fprintf(stdout, "WALNUT UNKNOWN: %s\n", oneLine(msg))
		return ExitUnknown
	}
	if restoreCommand(g.command) && code != ExitWALNotFound {
		// Whatever went wrong, a flag, an envdir PostgreSQL cannot read or
		// the store, PostgreSQL must not read it as "not in the archive".
		code = walFetchFailure()
	}
	fmt.Fprintf(stderr, "walnut: %s\n", oneLine(msg))
	return code
}

func newApp(g *globals) *cli.App {
	app := &cli.App{
		Name:                 "walnut",
		Usage:                "continuous archiving and point-in-time recovery for PostgreSQL",
		HideVersion:          true,
		Writer:               g.stdout,
		ErrWriter:            g.stderr,
		Flags:                g.flags(),
		Before:               g.before,
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {}, // Main decides the exit code
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError(err)
		},
		CustomAppHelpTemplate: cli.AppHelpTemplate + clidoc.EnvironmentHelp(),
		Action: func(c *cli.Context) error {
			if g.version {
				printVersion(g)
				return nil
			}
			if c.NArg() > 0 {
				return usageError(fmt.Errorf("unknown command %q: see walnut help", c.Args().First()))
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			walPushCommand(g),
			walFetchCommand(g),
			walPrefetchCommand(g),
			walReceiveCommand(g),
			backupPushCommand(g),
			backupFetchCommand(g),
			backupListCommand(g),
			deleteCommand(g),
			backupMarkCommand(g),
			backupVerifyCommand(g),
			walVerifyCommand(g),
			checkCommand(g),
			statusCommand(g),
			keysCommand(g),
			versionCommand(g),
			completionCommand(g),
			manCommand(g),
		},
	}
	app.BashComplete = g.complete
	clidoc.SetComplete(app.Commands, g.complete)
	for _, c := range app.Commands {
		if c.OnUsageError == nil {
			c.OnUsageError = app.OnUsageError
		}
	}
	return app
}

// oneLine keeps an error to the one line walnut promises.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Exit codes; the README's table documents them.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	// ExitWALNotFound: wal-fetch's "not in the archive". PostgreSQL reads
	// any code up to 125 so; this one is distinct so logs tell it apart.
	ExitWALNotFound = 66
	// ExitWALFetchFatal: wal-fetch failed during archive recovery for a
	// reason other than absence. Above 125, so PostgreSQL stops instead of
	// ending recovery early and promoting at the wrong point.
	ExitWALFetchFatal = 200
)

type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}

func usageError(err error) error { return withCode(ExitUsage, err) }

// quietError ends the run with its code after the command has printed
// why itself (status's summary line).
type quietError struct{ code int }

func (e *quietError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func quietExit(code int) error {
	if code == ExitOK {
		return nil
	}
	return &quietError{code: code}
}

func exitCode(err error) int {
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	return ExitFailure
}
