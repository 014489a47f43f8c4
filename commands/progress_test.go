package commands

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/config"
	"github.com/walnut-pg/walnut/internal/testpty"
)

func TestProgressOnlyOnATerminal(t *testing.T) {
	ptm, tty, err := testpty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	defer tty.Close()
	go io.Copy(io.Discard, ptm)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()

	cases := []struct {
		name      string
		stderr    io.Writer
		terse     bool
		logFormat string
		environ   []string
		want      bool
	}{
		{"terminal", tty, false, "text", []string{"TERM=xterm"}, true},
		{"buffer", &bytes.Buffer{}, false, "text", nil, false},
		{"pipe, as under PostgreSQL or cron", pw, false, "text", nil, false},
		{"terminal with --terse", tty, true, "text", nil, false},
		{"terminal with JSON logs", tty, false, "json", nil, false},
		{"dumb terminal", tty, false, "text", []string{"TERM=dumb"}, false},
	}
	for _, c := range cases {
		g := &globals{stderr: c.stderr, terse: c.terse, logFormat: c.logFormat, env: config.New(c.environ)}
		if got := g.progressFor("backup") != nil; got != c.want {
			t.Errorf("%s: bar %v, want %v", c.name, got, c.want)
		}
	}
}

func TestInvalidRateLimitIsAUsageError(t *testing.T) {
	for _, args := range [][]string{
		{"walnut", "backup-push", t.TempDir()},
		{"walnut", "backup-fetch", "--no-recovery", t.TempDir(), "LATEST"},
	} {
		var stderr strings.Builder
		env := []string{"WALNUT_PREFIX=file://" + t.TempDir(), "WALNUT_RATE_LIMIT=fast"}
		code := Main(args, env, io.Discard, &stderr)
		if code != ExitUsage || !strings.Contains(stderr.String(), `WALNUT_RATE_LIMIT="fast": want bytes per second`) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d naming WALNUT_RATE_LIMIT", args[1], code, stderr.String(), ExitUsage)
		}
	}
}
