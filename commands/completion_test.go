package commands

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/commands/clidoc"
	"github.com/walnut-pg/walnut/internal/testpg"
)

// The candidates a shell gets for the first word are exactly the commands
// walnut help lists: hidden ones (completion, man, wal-prefetch) stay out.
func TestCompletionOffersVisibleCommands(t *testing.T) {
	code, out, stderr := runMain(clidoc.CompletionFlag)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	got := strings.Fields(out)
	var want []string
	for _, c := range newApp(&globals{}).Commands {
		if !c.Hidden {
			want = append(want, c.Name)
		}
	}
	for _, name := range want {
		if !slices.Contains(got, name) {
			t.Errorf("completion lacks %q; got %q", name, got)
		}
	}
	for _, hidden := range []string{"completion", "man", "wal-prefetch"} {
		if slices.Contains(got, hidden) {
			t.Errorf("completion offers hidden command %q", hidden)
		}
	}
	_, help, _ := runMain("help")
	for _, line := range strings.Split(help, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && (f[0] == "completion" || f[0] == "man") {
			t.Errorf("walnut help lists hidden command: %q", line)
		}
	}
}

func TestCompletionOffersFlagsAndSubcommands(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--env", clidoc.CompletionFlag}, "--envdir"},
		{[]string{"backup-fetch", "--rec", clidoc.CompletionFlag}, "--recovery-target-time"},
		// After a positional argument the flag is still the command's:
		// interspersed must not move the completion flag off the end.
		{[]string{"backup-fetch", "/tmp/dest", "--st", clidoc.CompletionFlag}, "--standby"},
		{[]string{"--envdir", "/etc/walnut/env", "keys", clidoc.CompletionFlag}, "create"},
		{[]string{clidoc.CompletionFlag}, "help"},
	}
	for _, tt := range tests {
		code, out, stderr := runMain(tt.args...)
		if code != 0 || !slices.Contains(strings.Fields(out), tt.want) {
			t.Errorf("walnut %q: exit %d, stdout %q, stderr %q; want %q offered", tt.args, code, out, stderr, tt.want)
		}
	}
}

// After a command without subcommands nothing is offered, so the shell
// completes a path (backup-fetch DEST, wal-push PATH).
func TestCompletionLeavesArgumentsToTheShell(t *testing.T) {
	for _, args := range [][]string{{"backup-fetch", clidoc.CompletionFlag}, {"wal-push", clidoc.CompletionFlag}, {"keys", "create", clidoc.CompletionFlag}} {
		code, out, stderr := runMain(args...)
		if code != 0 || strings.TrimSpace(out) != "" {
			t.Errorf("walnut %q: exit %d, stdout %q, stderr %q; want exit 0 and no candidates", args, code, out, stderr)
		}
	}
}

// The scripts must at least parse in their shells; the package test
// (packaging/) runs the bash one against the installed walnut.
func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh"} {
		t.Run(shell, func(t *testing.T) {
			code, script, stderr := runMain("completion", shell)
			if code != 0 || !strings.Contains(script, clidoc.CompletionFlag) {
				t.Fatalf("walnut completion %s: exit %d, stderr %q", shell, code, stderr)
			}
			path, err := exec.LookPath(shell)
			testpg.Require(t, shell, err)
			f := filepath.Join(t.TempDir(), "walnut."+shell)
			if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(path, "-n", f).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", shell, err, out)
			}
		})
	}
	if code, _, stderr := runMain("completion", "fish"); code != ExitUsage || !strings.Contains(stderr, "fish") {
		t.Errorf("walnut completion fish: exit %d, stderr %q; want a usage error naming fish", code, stderr)
	}
}

func TestManPage(t *testing.T) {
	code, page, stderr := runMain("man")
	if code != 0 {
		t.Fatalf("walnut man: exit %d, stderr %q", code, stderr)
	}
	want := []string{".TH walnut 1", ".SH ENVIRONMENT", `\fBWALNUT_PREFIX\fR`, ".SH EXIT STATUS", `\fB66\fR`}
	for _, c := range newApp(&globals{}).Commands {
		if !c.Hidden {
			want = append(want, "\n.SH "+c.Name+"\n")
		}
	}
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("man page lacks %q", w)
		}
	}
	for _, hidden := range []string{"\n.SH completion", "\n.SH man\n"} {
		if strings.Contains(page, hidden) {
			t.Errorf("man page documents hidden command %q", hidden)
		}
	}
}

// walnut help, then walnut man, in one process: the man page must not
// recurse into urfave's shared help command (it did, without end).
func TestManPageAfterHelp(t *testing.T) {
	runMain("help")
	runMain("keys", "help")
	code, page, stderr := runMain("man")
	if code != 0 || !strings.Contains(page, ".SH keys") {
		t.Fatalf("walnut man after walnut help: exit %d, stderr %q", code, stderr)
	}
}
