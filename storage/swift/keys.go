package swift

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/walnut-pg/walnut/storage"
)

// segmentsDir, under the store's prefix, holds the segments of large
// objects: segmentsDir + key + "/" + upload ID + "/" + number. Keys may not
// start with it, so List can leave segments out.
const segmentsDir = ".walnut-segments/"

// checkKey rejects keys that the other backends reject too, so an archive
// can move between stores, and keys Swift cannot name.
func checkKey(key string) error {
	problem := keyProblem(key)
	if problem == "" && strings.HasPrefix(key, segmentsDir) {
		problem = fmt.Sprintf("starts with %q, reserved for the segments of large objects", segmentsDir)
	}
	if problem == "" {
		return nil
	}
	return storage.Permanent(fmt.Errorf("invalid key %q: %w", key, errors.New(problem)))
}

func keyProblem(key string) string {
	switch {
	case key == "":
		return "is empty"
	case strings.HasPrefix(key, "/"):
		return `starts with "/"; keys are relative to the prefix`
	case strings.ContainsRune(key, 0):
		return "contains a NUL byte"
	case !utf8.ValidString(key):
		return "is not valid UTF-8, which Swift requires of object names"
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
