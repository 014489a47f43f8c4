package commands

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
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

// Workers add bytes concurrently, before and after the total is known and
// past an estimate that was too low; every byte is counted once.
func TestByteBarCounts(t *testing.T) {
	var out bytes.Buffer
	sink := &logSink{w: &out}
	b := &byteBar{desc: "restore", out: &out, log: sink}
	const workers, adds, chunk = 8, 500, 1000
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for j := range adds {
				if i == 0 && j == adds/2 {
					b.Total(workers * adds * chunk / 2)
				}
				b.Add(chunk)
			}
		})
	}
	wg.Wait()
	if got := b.Done(); got != workers*adds*chunk {
		t.Errorf("counted %d bytes, want %d", got, workers*adds*chunk)
	}
	if b.bar.GetMax64() <= b.Done() {
		t.Errorf("bar max %d not above the %d bytes done: a full bar stops drawing before the end", b.bar.GetMax64(), b.Done())
	}
	fmt.Fprint(sink, "level=INFO msg=\"between two bars\"\n")
	b.Stop()
	fmt.Fprint(sink, "level=INFO msg=after\n")
	s := out.String()
	if !strings.Contains(s, "restore") || !strings.Contains(s, "MiB") {
		t.Errorf("no bar drawn: %q", s)
	}
	if !strings.Contains(s, "level=INFO msg=\"between two bars\"\n") {
		t.Errorf("a log line written while the bar was up was not written whole: %q", s)
	}
	if !strings.HasSuffix(s, "\rlevel=INFO msg=after\n") {
		t.Errorf("the bar was not cleared before later log lines: %q", s[max(0, len(s)-200):])
	}
}

func TestByteBarNilStop(t *testing.T) {
	var b *byteBar
	b.Stop() // commands call Stop whether or not a bar was made
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
