package storage

import (
	"errors"
	"fmt"
	"strings"
)

// KeyProblem says why key cannot name an object in any store, or returns
// "" if it can: a key is a relative "/"-separated path without a NUL byte
// and without empty, "." or ".." segments, so that every backend stores it
// under the name asked for and none can climb out of its prefix. Backends
// with further limits check those after this.
func KeyProblem(key string) string {
	switch {
	case key == "":
		return "is empty"
	case strings.HasPrefix(key, "/"):
		return `starts with "/"; keys are relative to the prefix`
	case strings.ContainsRune(key, 0):
		return "contains a NUL byte"
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return `has an empty segment ("//" or a trailing "/")`
		case seg == "." || seg == "..":
			return fmt.Sprintf("has a %q segment", seg)
		}
	}
	return ""
}

// InvalidKey is the Permanent error for a key refused because of problem,
// as KeyProblem or a backend's own check words it; nil if problem is "".
func InvalidKey(key, problem string) error {
	if problem == "" {
		return nil
	}
	return Permanent(fmt.Errorf("invalid key %q: %w", key, errors.New(problem)))
}
