package commands

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"
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
	fmt.Fprintf(g.stdout, "walnut %s (commit %s, %s %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
