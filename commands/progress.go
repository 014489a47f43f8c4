package commands

import "github.com/walnut-pg/walnut/termprogress"

// progressFor returns a bar drawing on stderr when a person is watching
// it, else nil: no bar when stderr is not a terminal (cron, a pipe, a log
// file, PostgreSQL running us), under --terse, with JSON logs (a machine
// reads them) or on a dumb terminal.
func (g *globals) progressFor(desc string) *termprogress.Bar {
	if g.terse || g.logFormat != "text" || g.env.Getenv("TERM") == "dumb" || !termprogress.IsTerminal(g.stderr) {
		return nil
	}
	return termprogress.New(desc, g.stderr, g.logOut)
}
