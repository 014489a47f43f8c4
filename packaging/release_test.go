package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// repoRoot is the source tree this test belongs to.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// release runs scripts/release.sh from the tree src into out.
func release(t *testing.T, src, out string, env ...string) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(src, "scripts", "release.sh"))
	cmd.Dir = src
	cmd.Env = append(os.Environ(), append([]string{"OUT=" + out}, env...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh in %s: %v\n%s", src, err, b)
	}
}

// copyTree copies the files git knows of (tracked and new, not ignored)
// from src to dst: the source as a second checkout would have it.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = src
	list, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		from := filepath.Join(src, name)
		fi, err := os.Lstat(from)
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// Two release builds of one source, from two directories into two
// others, give the same bytes: binary, .deb and SHA256SUMS. One
// architecture keeps it cheap (the Go build cache is shared, so the
// second build mostly relinks); the other is built by the same commands.
func TestReleaseReproducible(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	root := repoRoot(t)
	tmp := t.TempDir()
	second := filepath.Join(tmp, "elsewhere", "walnut")
	copyTree(t, root, second)
	arch := runtime.GOARCH
	env := []string{
		"ARCHES=" + arch, "DEB=1",
		"VERSION=v1.2.3-4-gabcdefabcdef", "COMMIT=abcdefabcdef", "SOURCE_DATE_EPOCH=1700000000",
	}
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	release(t, root, a, env...)
	release(t, second, b, env...)

	names := []string{"SHA256SUMS", "walnut-linux-" + arch, "walnut_1.2.3+4.gabcdefabcdef_" + arch + ".deb"}
	for _, name := range names {
		x, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds of the same source", name)
		}
	}
	sums, _ := os.ReadFile(filepath.Join(a, "SHA256SUMS"))
	check := exec.Command("sha256sum", "--check", "--strict", "SHA256SUMS")
	check.Dir = a
	if out, err := check.CombinedOutput(); err != nil || strings.Count(string(sums), "\n") != 2 {
		t.Errorf("sha256sum --check: %v\n%s\nSHA256SUMS:\n%s", err, out, sums)
	}

	bin := filepath.Join(a, "walnut-linux-"+arch)
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "walnut v1.2.3-4-gabcdefabcdef (commit abcdefabcdef, go") {
		t.Errorf("walnut --version: %v, %q", err, out)
	}
	// Static, path-free, and nothing of the packaging tool linked in.
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath=true"} {
		if !strings.Contains(string(info), want) {
			t.Errorf("go version -m: no %s in\n%s", want, info)
		}
	}
	for _, unwanted := range []string{"goreleaser", "vcs.time", root} {
		if strings.Contains(string(info), unwanted) {
			t.Errorf("go version -m: %q in the release binary's build info", unwanted)
		}
	}
	if raw, _ := os.ReadFile(bin); bytes.Contains(raw, []byte(root)) || bytes.Contains(raw, []byte(second)) {
		t.Errorf("the release binary holds its source directory's path")
	}
}
