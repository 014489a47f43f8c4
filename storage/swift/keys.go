package swift

import (
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
	return storage.InvalidKey(key, problem)
}

func keyProblem(key string) string {
	if problem := storage.KeyProblem(key); problem != "" {
		return problem
	}
	if !utf8.ValidString(key) {
		return "is not valid UTF-8, which Swift requires of object names"
	}
	return ""
}
