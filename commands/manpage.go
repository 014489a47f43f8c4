package commands

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/config"
)

// manSection: walnut is a user command, run by operators, cron and
// PostgreSQL alike.
const manSection = 1

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
			page, err := manPage(newApp(g))
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(g.stdout, page)
			return err
		},
	}
}

// manPage renders the app's commands and flags through urfave/cli, then
// adds what its template leaves out: the variables (config.Vars, the
// table `walnut help` prints) and the exit codes.
func manPage(app *cli.App) (string, error) {
	page, err := app.ToManWithSection(manSection)
	if err != nil {
		return "", fmt.Errorf("man page: %w", err)
	}
	var b strings.Builder
	b.WriteString(page)
	if !strings.HasSuffix(page, "\n") {
		b.WriteString("\n")
	}
	b.WriteString(".SH ENVIRONMENT\n")
	b.WriteString(roffText("Precedence: a command-line flag, then --envdir DIR or --env-file FILE, then the process environment.") + "\n")
	for _, v := range config.Vars {
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s\n", roffText(v.Name), roffText(v.Usage))
		if len(v.Aliases) > 0 {
			fmt.Fprintf(&b, "(also read: %s)\n", roffText(strings.Join(v.Aliases, ", ")))
		}
	}
	b.WriteString(".SH EXIT STATUS\n")
	for _, e := range []struct {
		code int
		text string
	}{
		{ExitOK, "success"},
		{ExitFailure, "failure"},
		{ExitUsage, "usage or configuration error"},
		{ExitWALNotFound, "wal-fetch: the file is not in the archive"},
		{ExitWALFetchFatal, "wal-fetch: any other failure during archive recovery, so that PostgreSQL stops instead of ending recovery"},
		{ExitWarning, "status: WARNING (Nagios)"},
		{ExitCritical, "status: CRITICAL (Nagios)"},
		{ExitUnknown, "status: UNKNOWN, the check could not run (Nagios)"},
	} {
		fmt.Fprintf(&b, ".TP\n\\fB%d\\fR\n%s\n", e.code, roffText(e.text))
	}
	return b.String(), nil
}

// roffText escapes s for a roff text line: backslashes and hyphens
// (which roff may otherwise print as a hyphenation dash, breaking
// copied flags), and a leading dot or quote, which would make a
// request of the line.
func roffText(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
