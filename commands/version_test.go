package commands

import (
	"bytes"
	"strings"
	"testing"
)

func runMain(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(append([]string{"walnut"}, args...), nil, &out, &errb)
	return code, out.String(), errb.String()
}

// walnut --version prints what walnut version does, as most tools'
// --version would.
func TestVersionFlag(t *testing.T) {
	code, want, _ := runMain("version")
	if code != 0 || !strings.HasPrefix(want, "walnut ") {
		t.Fatalf("walnut version: exit %d, %q", code, want)
	}
	code, got, stderr := runMain("--version")
	if code != 0 || got != want {
		t.Errorf("walnut --version: exit %d, stdout %q, stderr %q; want exit 0 and %q", code, got, stderr, want)
	}
}
