package commands

import (
	"fmt"
	"runtime"
	"runtime/debug"

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
	bi, _ := debug.ReadBuildInfo()
	v, c := clidoc.BuildVersion(version, commit, bi)
	fmt.Fprintf(g.stdout, "walnut %s (commit %s, %s %s/%s)\n", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
