package testpg

import (
	"os"
	"strings"
	"testing"
)

// RequireEnv names the variable that turns missing test dependencies from
// skips into failures: "all", or a comma-separated list of dependency names
// as passed to Require.
const RequireEnv = "WALNUT_TEST_REQUIRE"

// Require reports a missing test dependency named what, described by err.
// A nil err means the dependency is there. CI sets WALNUT_TEST_REQUIRE=all so
// that a missing server fails the run instead of hiding behind a skip.
func Require(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if required(os.Getenv(RequireEnv), what) {
		t.Fatalf("%s is required (%s=%s) but unavailable: %v", what, RequireEnv, os.Getenv(RequireEnv), err)
	}
	t.Skipf("%s unavailable (set %s=all or %s=%s to fail instead): %v", what, RequireEnv, RequireEnv, what, err)
}

func required(setting, what string) bool {
	for _, name := range strings.Split(setting, ",") {
		name = strings.TrimSpace(name)
		if name == "all" || (name != "" && name == what) {
			return true
		}
	}
	return false
}
