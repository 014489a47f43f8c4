// Package clidoc renders what walnut says about itself from the
// *cli.App commands builds: the man page, the shell completion scripts and
// candidates, the help's table of variables and the version. Made from
// the same definitions as `walnut help`, none of it can drift from it.
package clidoc

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/walnut-pg/walnut/config"
)

// EnvironmentHelp lists every variable walnut reads, from the one table in
// package config.
func EnvironmentHelp() string {
	var b strings.Builder
	b.WriteString("\nENVIRONMENT (flag > --envdir/--env-file > process environment):\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, v := range config.Vars {
		fmt.Fprintf(tw, "   %s\t%s\n", v.Name, v.Usage)
		if len(v.Aliases) > 0 {
			fmt.Fprintf(tw, "   \t(also read: %s)\n", strings.Join(v.Aliases, ", "))
		}
	}
	tw.Flush()
	return b.String()
}

// VarsHelp is the part of a command's help that names the variables it reads.
func VarsHelp(names ...string) string {
	return "Reads " + strings.Join(names, ", ") + " (see walnut help for all variables)."
}
