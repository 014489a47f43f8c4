package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/commands/clidoc"
)

// Set by the Makefile with -ldflags -X for builds from a clone; empty
// otherwise, and then the build info answers (see clidoc.BuildVersion).
var (
	version string
	commit  string
)

func versionCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print walnut's version, commit and Go version",
		Action: func(*cli.Context) error {
			printVersion(g)
			return nil
		},
	}
}

// printVersion is the output of both `walnut version` and `walnut --version`.
func printVersion(g *globals) {
	fmt.Fprintln(g.stdout, clidoc.VersionLine(version, commit))
}
