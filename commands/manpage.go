package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/commands/clidoc"
)

// manCommand prints walnut's man page. It is hidden: packages run it at
// build time, so the page is made from the same definitions as `walnut
// help` and cannot drift from it.
func manCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:   "man",
		Usage:  "print walnut's man page (roff)",
		Hidden: true,
		Action: func(*cli.Context) error {
			// A fresh app, not the running one: running sets up urfave's
			// shared help command, which by then lists itself among its
			// subcommands, and the doc template would recurse into it
			// forever once any help had been shown in this process.
			page, err := clidoc.ManPage(newApp(g), exitCodes)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(g.stdout, page)
			return err
		},
	}
}

// exitCodes are the man page's EXIT STATUS, as the README's table.
var exitCodes = []clidoc.ExitCode{
	{Code: ExitOK, Text: "success"},
	{Code: ExitFailure, Text: "failure"},
	{Code: ExitUsage, Text: "usage or configuration error"},
	{Code: ExitWALNotFound, Text: "wal-fetch: the file is not in the archive"},
	{Code: ExitWALFetchFatal, Text: "wal-fetch: any other failure during archive recovery, so that PostgreSQL stops instead of ending recovery"},
	{Code: ExitWarning, Text: "status: WARNING (Nagios)"},
	{Code: ExitCritical, Text: "status: CRITICAL (Nagios)"},
	{Code: ExitUnknown, Text: "status: UNKNOWN, the check could not run (Nagios)"},
}
