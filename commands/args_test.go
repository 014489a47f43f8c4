package commands

import (
	"github.com/walnut-pg/walnut/commands/cliargs"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestInterspersedFlags(t *testing.T) {
	app := newApp(&globals{stdout: io.Discard, stderr: io.Discard})
	cases := []struct{ in, want []string }{
		{
			[]string{"walnut", "--envdir", "/e", "backup-fetch", "/d", "LATEST", "--recovery-target-name", "x", "--standby"},
			[]string{"walnut", "--envdir", "/e", "backup-fetch", "--recovery-target-name", "x", "--standby", "/d", "LATEST"},
		},
		{
			[]string{"walnut", "backup-fetch", "/d", "--recovery-target-time=2026-01-01", "LATEST"},
			[]string{"walnut", "backup-fetch", "--recovery-target-time=2026-01-01", "/d", "LATEST"},
		},
		{
			[]string{"walnut", "wal-fetch", "--", "-odd", "dest"},
			[]string{"walnut", "wal-fetch", "--", "-odd", "dest"},
		},
		{[]string{"walnut", "version"}, []string{"walnut", "version"}},
		{
			[]string{"walnut", "keys", "create", "--name", "n", "--out-dir", "/k"},
			[]string{"walnut", "keys", "create", "--name", "n", "--out-dir", "/k"},
		},
	}
	for _, c := range cases {
		if got := cliargs.Interspersed(app, c.in); !slices.Equal(got, c.want) {
			t.Errorf("cliargs.Interspersed(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	var stderr strings.Builder
	code := Main([]string{"walnut", "frobnicate", "7"}, nil, io.Discard, &stderr)
	if code != ExitUsage || strings.TrimSpace(stderr.String()) != `walnut: unknown command "frobnicate": see walnut help` {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestCommandName(t *testing.T) {
	app := newApp(&globals{stdout: io.Discard, stderr: io.Discard})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"walnut"}, ""},
		{[]string{"walnut", "wal-fetch", "A", "B"}, "wal-fetch"},
		{[]string{"walnut", "--envdir", "/etc/walnut/env", "wal-fetch", "A", "B"}, "wal-fetch"},
		{[]string{"walnut", "--envdir=/etc/walnut/env", "--terse", "wal-fetch", "A", "B"}, "wal-fetch"},
		{[]string{"walnut", "--envdri", "/etc/walnut/env", "wal-fetch", "A", "B"}, "wal-fetch"},
		{[]string{"walnut", "--bogus", "wal-prefetch", "A", "B"}, "wal-prefetch"},
		{[]string{"walnut", "backup-fetch", "/tmp/wal-fetch", "LATEST"}, "backup-fetch"},
		{[]string{"walnut", "nonsense", "wal-fetch"}, ""},
		{[]string{"walnut", "--envdir"}, ""},
		{[]string{"walnut", "--version"}, ""},
	} {
		if got := cliargs.CommandName(app, tt.args); got != tt.want {
			t.Errorf("commandName(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}
