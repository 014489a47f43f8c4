package packaging

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// debOptIn turns the package test on outside CI: it installs into this
// machine's /usr (as root) and removes the package again at the end.
const debOptIn = "WALNUT_TEST_DEB"

// requireTool fails under WALNUT_TEST_REQUIRE=all (or =name), else skips,
// when a tool the package test needs is missing.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	testpg.Require(t, name, err)
	return path
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The .deb as a DBA meets it: installed with dpkg -i, it has the man page,
// completion that offers the commands, units systemd accepts, the version
// it was built as, and no maintainer scripts or enabled units; dpkg -r
// takes every file of it away and leaves the operator's configuration.
func TestDebInstall(t *testing.T) {
	if os.Getenv(debOptIn) != "1" && os.Getenv(testpg.RequireEnv) != "all" {
		t.Skipf("installs a package into /usr: set %s=1 (or %s=all, as CI does) to run it", debOptIn, testpg.RequireEnv)
	}
	if os.Geteuid() != 0 {
		testpg.Require(t, "root", errors.New("dpkg -i needs root"))
	}
	for _, tool := range []string{"dpkg", "dpkg-query", "dpkg-deb", "man", "bash", "git"} {
		requireTool(t, tool)
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Status}", "walnut").Output(); err == nil && strings.Contains(string(out), "installed") && !strings.Contains(string(out), "not-installed") {
		t.Fatalf("a walnut package is already installed (%s): this test would replace and remove it; dpkg -r walnut first", out)
	}

	root := repoRoot(t)
	version := strings.TrimSpace(run(t, filepath.Join(root, "scripts", "version.sh")))
	debVersion := strings.TrimSpace(run(t, filepath.Join(root, "scripts", "version.sh"), "deb"))
	dist := t.TempDir()
	release(t, root, dist, "ARCHES="+runtime.GOARCH, "DEB=1", "VERSION="+version)
	deb := filepath.Join(dist, "walnut_"+debVersion+"_"+runtime.GOARCH+".deb")

	if info := run(t, "dpkg-deb", "--info", deb); strings.Contains(info, "postinst") || strings.Contains(info, "preinst") || strings.Contains(info, "prerm") || strings.Contains(info, "conffiles") {
		t.Errorf("the package has maintainer scripts or conffiles; it must create and start nothing:\n%s", info)
	}

	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", "walnut").CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge walnut: %v\n%s", err, out)
		}
	})
	run(t, "dpkg", "-i", deb)

	if got := run(t, "dpkg-query", "-W", "-f", "${Version}", "walnut"); got != debVersion {
		t.Errorf("dpkg says version %q; want %q", got, debVersion)
	}
	if got := run(t, "/usr/bin/walnut", "--version"); !strings.HasPrefix(got, "walnut "+version+" (commit ") {
		t.Errorf("walnut --version: %q; want the package's version %s", got, version)
	}
	if got := strings.TrimSpace(run(t, "man", "-w", "walnut")); got != "/usr/share/man/man1/walnut.1.gz" {
		t.Errorf("man -w walnut: %q", got)
	}

	// Bash completion as bash runs it: the script sourced, the words so
	// far in COMP_WORDS, the installed walnut answering.
	complete := func(words ...string) []string {
		script := `source /usr/share/bash-completion/completions/walnut
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
complete -p walnut >/dev/null || exit 1
_walnut
printf '%s\n' "${COMPREPLY[@]}"`
		return strings.Fields(run(t, "bash", append([]string{"-c", script, "bash"}, words...)...))
	}
	first := complete("walnut", "")
	for _, want := range []string{"wal-push", "wal-fetch", "backup-push", "backup-fetch", "backup-list", "delete", "backup-verify", "status", "version"} {
		if !slices.Contains(first, want) {
			t.Errorf("completion of `walnut ` lacks %s: %q", want, first)
		}
	}
	for _, hidden := range []string{"completion", "man"} {
		if slices.Contains(first, hidden) {
			t.Errorf("completion offers hidden command %s", hidden)
		}
	}
	if got := complete("walnut", "backup-"); !slices.Contains(got, "backup-push") || slices.Contains(got, "wal-push") {
		t.Errorf("completion of `walnut backup-`: %q", got)
	}
	if got := complete("walnut", "backup-fetch", "--recovery-target-t"); !slices.Contains(got, "--recovery-target-time") || !slices.Contains(got, "--recovery-target-timeline") || slices.Contains(got, "--standby") {
		t.Errorf("completion of `walnut backup-fetch --recovery-target-t`: %q", got)
	}
	if zsh, err := exec.LookPath("zsh"); err == nil {
		run(t, zsh, "-n", "/usr/share/zsh/vendor-completions/_walnut")
	}

	units, _ := filepath.Glob("/usr/lib/systemd/system/walnut-*")
	wantUnits := []string{"walnut-backup.service", "walnut-backup.timer", "walnut-drill.service", "walnut-drill.timer", "walnut-wal-receive.service"}
	if len(units) != len(wantUnits) {
		t.Errorf("units installed: %q; want %q", units, wantUnits)
	}
	// systemd-analyze verify also checks that ExecStart's binary exists
	// and that Documentation=man:walnut(1) resolves.
	analyze := requireTool(t, "systemd-analyze")
	for _, u := range wantUnits {
		if out, err := exec.Command(analyze, "verify", "/usr/lib/systemd/system/"+u).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
		}
	}
	if enabled, _ := filepath.Glob("/etc/systemd/system/*/walnut-*"); len(enabled) > 0 {
		t.Errorf("installing enabled units: %q", enabled)
	}
	for _, f := range []string{"WALNUT_PREFIX", "WALNUT_COMPRESSION"} {
		if _, err := os.Stat("/usr/share/doc/walnut/examples/env/" + f); err != nil {
			t.Errorf("example envdir: %v", err)
		}
	}

	// The operator's configuration, as README.Debian says to make it.
	// Only when there is none already: this test never touches a real one.
	made := false
	if _, err := os.Stat("/etc/walnut"); os.IsNotExist(err) {
		made = true
		t.Cleanup(func() { os.RemoveAll("/etc/walnut") })
		if err := os.MkdirAll("/etc/walnut", 0o750); err != nil {
			t.Fatal(err)
		}
		run(t, "cp", "-r", "/usr/share/doc/walnut/examples/env", "/etc/walnut/env")
	}

	listed := strings.Fields(run(t, "dpkg-query", "-L", "walnut"))
	run(t, "dpkg", "-r", "walnut")
	for _, p := range listed {
		fi, err := os.Lstat(p)
		if err == nil && !fi.IsDir() {
			t.Errorf("dpkg -r left %s behind", p)
		}
	}
	if _, err := os.Stat("/usr/share/doc/walnut"); err == nil {
		t.Errorf("dpkg -r left /usr/share/doc/walnut behind")
	}
	if made {
		if _, err := os.Stat("/etc/walnut/env/WALNUT_PREFIX"); err != nil {
			t.Errorf("dpkg -r took the operator's configuration: %v", err)
		}
	}
	if out, _ := exec.Command("dpkg-query", "-W", "-f", "${Status}", "walnut").Output(); strings.Contains(string(out), " installed") {
		t.Errorf("after dpkg -r, dpkg says %q", out)
	}
}
