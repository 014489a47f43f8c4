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
			fmt.Fprintf(g.stdout, "walnut %s (commit %s, %s %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
