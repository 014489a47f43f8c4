// Package cliargs works on walnut's command lines as words: it puts flags
// written after positional arguments in front of them, splits WAL-E's
// attached short options, names the command a line runs, and reads a
// server's archive_command as the walnut command line the shell would run.
// commands uses it; it decides no exit code.
package cliargs

import (
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/commands/clidoc"
)

// Interspersed moves a command's flags in front of its positional
// arguments: urfave/cli stops parsing flags at the first positional one, but
// operators write `walnut backup-fetch DEST LATEST --recovery-target-time T`
// as the README and WAL-E do. Arguments after "--" stay where they are, and
// a completion request (clidoc.CompletionFlag last) as it is.
func Interspersed(app *cli.App, args []string) []string {
	if n := len(args); n > 1 && args[n-1] == clidoc.CompletionFlag {
		return args // a shell's request: the flag stays last, where urfave/cli looks for it
	}
	i := commandIndex(app, args)
	if i < 0 {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args
	}
	// The flags of `keys create` belong to create, not to keys.
	for i+1 < len(args) {
		sub := subcommand(cmd, args[i+1])
		if sub == nil {
			break
		}
		cmd, i = sub, i+1
	}
	var flags, positional []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		switch {
		case a == "--":
			positional = append(positional, rest[j:]...)
			j = len(rest)
		case strings.HasPrefix(a, "-") && a != "-":
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && j+1 < len(rest) {
				j++
				flags = append(flags, rest[j])
			}
		default:
			positional = append(positional, a)
		}
	}
	out := append([]string{}, args[:i+1]...)
	out = append(out, flags...)
	return append(out, positional...)
}

// commandIndex returns where the command's name is in args, after the
// program name and the global flags, or -1 if there is none.
func commandIndex(app *cli.App, args []string) int {
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		if takesValue(app.Flags, args[i]) {
			i++
		}
		i++
	}
	if i >= len(args) {
		return -1
	}
	return i
}

// CommandName returns the command args run, "" if none; it is known even
// when parsing its flags or the global ones fails. An unknown global flag
// may take a value (a misspelt --envdir), so then the command is the first
// word after it that names one.
func CommandName(app *cli.App, args []string) string {
	i := commandIndex(app, args)
	if i < 0 {
		return ""
	}
	if cmd := app.Command(args[i]); cmd != nil {
		return cmd.Name
	}
	if i < 2 || !strings.HasPrefix(args[i-1], "-") || takesValue(app.Flags, args[i-1]) {
		return ""
	}
	for _, a := range args[i+1:] {
		if a == "--" {
			break
		}
		if cmd := app.Command(a); cmd != nil && !strings.HasPrefix(a, "-") {
			return cmd.Name
		}
	}
	return ""
}

func subcommand(cmd *cli.Command, name string) *cli.Command {
	for _, sub := range cmd.Subcommands {
		if sub.HasName(name) {
			return sub
		}
	}
	return nil
}

// takesValue reports whether arg names a flag that takes its value from
// the next argument (not --flag=value, not a boolean).
func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}

// SplitAttached turns WAL-E's (argparse's) "-p8" into "-p", "8" wherever
// -p is a one-letter flag that takes a value, for the global flags and
// the command's: Go's flag package would read "-p8" as an unknown flag
// named p8.
func SplitAttached(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	out := []string{args[0]}
	flags := app.Flags
	var cmd *cli.Command
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i:]...)
		case !strings.HasPrefix(a, "-") || a == "-":
			// A command (or subcommand) name brings its own flags.
			if cmd == nil {
				cmd = app.Command(a)
			} else if sub := subcommand(cmd, a); sub != nil {
				cmd = sub
			}
			if cmd != nil {
				flags = cmd.Flags
			}
			out = append(out, a)
		case len(a) > 2 && a[1] != '-' && a[2] != '=' && takesValue(flags, a[:2]) && !namesFlag(flags, a):
			// Go's flag package also takes a long name after one dash
			// (-pool-size), which namesFlag leaves alone.
			out = append(out, a[:2], a[2:])
		default:
			out = append(out, a)
			if takesValue(flags, a) && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
		}
	}
	return out
}

// namesFlag reports whether arg, without its dashes and any =value, is the
// name of one of flags.
func namesFlag(flags []cli.Flag, arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}
