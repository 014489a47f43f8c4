package clidoc

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/config"
)

// manSection: walnut is a user command, run by operators, cron and
// PostgreSQL alike.
const manSection = 1

// ExitCode is one line of the man page's EXIT STATUS.
type ExitCode struct {
	Code int
	Text string
}

// ManPage renders the app's commands and flags through urfave/cli, then
// adds what its template leaves out: the variables (config.Vars, the
// table `walnut help` prints) and the exit codes.
func ManPage(app *cli.App, codes []ExitCode) (string, error) {
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
	for _, e := range codes {
		fmt.Fprintf(&b, ".TP\n\\fB%d\\fR\n%s\n", e.Code, roffText(e.Text))
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
