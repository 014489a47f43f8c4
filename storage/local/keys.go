package local

import (
	"errors"
	"fmt"
	"strings"

	"github.com/walnut-pg/walnut/storage"
)

// checkKey rejects keys that would not name a file strictly under root, or
// that List could not give back unchanged.
func checkKey(key string) error {
	reason := keyProblem(key)
	if reason == "" {
		return nil
	}
	return storage.Permanent(fmt.Errorf("invalid key %q: %w", key, errors.New(reason)))
}

func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty key"
	case strings.HasPrefix(key, "/"):
		return `starts with "/"; keys are relative to the prefix`
	case strings.Contains(key, `\`):
		return "contains a backslash"
	case strings.ContainsRune(key, 0):
		return "contains a NUL byte"
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return `has an empty segment ("//" or a trailing "/")`
		case seg == "." || seg == "..":
			return fmt.Sprintf("has a %q segment", seg)
		case strings.HasPrefix(seg, tempPrefix):
			return fmt.Sprintf("has a segment starting with %q, reserved for uploads in progress", tempPrefix)
		}
	}
	return ""
}
