package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/internal/testpty"
)

// barMarks are what a drawn progress bar leaves in its output.
var barMarks = []string{"\r", "% |", "█", "MiB/s"}

func assertNoBar(t *testing.T, what, stderr string) {
	t.Helper()
	for _, m := range barMarks {
		if strings.Contains(stderr, m) {
			t.Errorf("%s: stderr holds %q, part of a progress bar, though it is not a terminal:\n%q", what, m, stderr)
		}
	}
}

// runOnTerminal runs walnut with stderr on a pseudo-terminal, as an
// operator at a shell would, and returns stdout and what the terminal got.
func runOnTerminal(t *testing.T, env []string, args ...string) (stdout, terminal string) {
	t.Helper()
	ptm, tty, err := testpty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&screen, ptm) // ends with EIO once the last tty fd closes
		close(copied)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := testpg.Command(ctx, env, walnutBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, tty
	err = cmd.Run()
	tty.Close()
	<-copied
	if err != nil {
		t.Fatalf("walnut %s on a terminal: %v\nstdout: %s\nterminal: %q", strings.Join(args, " "), err, out.String(), screen.String())
	}
	return out.String(), screen.String()
}

// A bar is drawn for a person at a terminal, and never into a pipe, a log
// file or PostgreSQL's stderr, nor under --terse.
func TestProgressOnlyOnTerminal(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Pgbench(t, "-i", "-s", "3", "-q")

	r := mustRun(t, "", env(a, src), "backup-push", src.DataDir)
	assertNoBar(t, "backup-push", r.Stderr)
	name := strings.TrimSpace(r.Stdout)
	r = mustRun(t, "", env(a, nil), "backup-fetch", "--no-recovery", filepath.Join(a.Dir, "piped"), name)
	assertNoBar(t, "backup-fetch", r.Stderr)

	stdout, screen := runOnTerminal(t, env(a, src, "TERM=xterm"), "backup-push", src.DataDir)
	if !strings.Contains(screen, "backup") || !strings.Contains(screen, "% |") || !strings.Contains(screen, "MiB") {
		t.Errorf("backup-push on a terminal drew no progress bar:\n%q", screen)
	}
	second := strings.TrimSpace(stdout)
	if !strings.HasPrefix(second, "base_") || strings.Contains(stdout, "%") {
		t.Errorf("backup-push stdout %q: want only the backup name, the bar goes to stderr", stdout)
	}
	_, screen = runOnTerminal(t, env(a, nil, "TERM=xterm"), "backup-fetch", "--no-recovery", filepath.Join(a.Dir, "on-terminal"), second)
	if !strings.Contains(screen, "restore") || !strings.Contains(screen, "% |") {
		t.Errorf("backup-fetch on a terminal drew no progress bar:\n%q", screen)
	}
	_, screen = runOnTerminal(t, env(a, nil, "TERM=xterm"), "--terse", "backup-fetch", "--no-recovery", filepath.Join(a.Dir, "terse"), second)
	assertNoBar(t, "backup-fetch --terse on a terminal", screen)
}

// WALNUT_RATE_LIMIT bounds the bytes a backup stores and a restore
// fetches. Only a lower bound on the time is asserted: a loaded machine
// makes a run slower, never faster than the limit allows.
func TestRateLimit(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	// Hex digests compress about 2:1, so the backup stores a few MB.
	src.Exec(t, "CREATE TABLE noise AS SELECT md5(random()::text) || md5(random()::text) AS x FROM generate_series(1, 80000)")
	const rate = 1_000_000 // 1MB
	const burst = 64 << 10

	start := time.Now()
	name := strings.TrimSpace(mustRun(t, "", env(a, src, "WALNUT_RATE_LIMIT=1MB"), "backup-push", src.DataDir).Stdout)
	pushed := time.Since(start)
	stored := storedSize(t, a, name)
	if stored < 2_000_000 {
		t.Fatalf("backup stored only %d bytes; the test needs a few MB to measure a rate", stored)
	}
	want := time.Duration(float64(stored-burst) / rate * 0.8 * float64(time.Second))
	if pushed < want {
		t.Errorf("backup-push stored %d bytes at WALNUT_RATE_LIMIT=1MB in %s; want at least %s", stored, pushed, want)
	}

	start = time.Now()
	mustRun(t, "", env(a, nil, "WALNUT_RATE_LIMIT=1000kB"), "backup-fetch", "--no-recovery", filepath.Join(a.Dir, "restored"), name)
	if fetched := time.Since(start); fetched < want {
		t.Errorf("backup-fetch read %d stored bytes at WALNUT_RATE_LIMIT=1000kB in %s; want at least %s", stored, fetched, want)
	}
	t.Logf("stored %d bytes; push %s, fetch %s at 1 MB/s", stored, pushed, time.Since(start))

	r := run(t, "", env(a, nil, "WALNUT_RATE_LIMIT=lots"), "backup-fetch", "--no-recovery", filepath.Join(a.Dir, "refused"), name)
	if r.Code != 2 || !strings.Contains(r.Stderr, "WALNUT_RATE_LIMIT") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Errorf("invalid WALNUT_RATE_LIMIT: want exit 2 and one line naming it, got %s", r)
	}
	if _, err := os.Stat(filepath.Join(a.Dir, "refused")); !os.IsNotExist(err) {
		t.Errorf("a refused backup-fetch created its target: %v", err)
	}
}

// storedSize is the stored bytes backup-list reports for name.
func storedSize(t *testing.T, a *archive, name string) int64 {
	t.Helper()
	out := mustRun(t, "", env(a, nil), "backup-list", "--json").Stdout
	var list []struct {
		Name   string `json:"name"`
		Stored int64  `json:"stored_size_bytes"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("backup-list --json: %v\n%s", err, out)
	}
	for _, b := range list {
		if b.Name == name {
			return b.Stored
		}
	}
	t.Fatalf("backup %s not in backup-list --json:\n%s", name, out)
	return 0
}
