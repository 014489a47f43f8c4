package local

import (
	"fmt"
	"strings"

	"github.com/walnut-pg/walnut/storage"
)

// checkKey rejects keys that would not name a file strictly under root, or
// that List could not give back unchanged.
func checkKey(key string) error {
	return storage.InvalidKey(key, keyProblem(key))
}

func keyProblem(key string) string {
	if problem := storage.KeyProblem(key); problem != "" {
		return problem
	}
	if strings.Contains(key, `\`) {
		return "contains a backslash"
	}
	for seg := range strings.SplitSeq(key, "/") {
		if strings.HasPrefix(seg, tempPrefix) {
			return fmt.Sprintf("has a segment starting with %q, reserved for uploads in progress", tempPrefix)
		}
	}
	return ""
}
