package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/commands/clidoc"
)

// completionCommand prints a shell's completion script. It is hidden:
// packages run it at build time, operators need not.
func completionCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the bash or zsh completion script",
		ArgsUsage: "bash|zsh",
		Hidden:    true,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError(fmt.Errorf("completion: want one argument, bash or zsh"))
			}
			script, err := clidoc.CompletionScript(c.App.Name, c.Args().First())
			if err != nil {
				return usageError(err)
			}
			_, err = fmt.Fprint(g.stdout, script)
			return err
		},
	}
}

// complete answers a shell's request for candidates (clidoc.Complete)
// on this run's stdout.
func (g *globals) complete(c *cli.Context) { clidoc.Complete(g.stdout, g.completeWord, c) }
