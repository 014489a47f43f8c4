package verify

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/walnut-pg/walnut/archive"
)

// Problem is one thing a restore would trip over, or one thing that could
// not be checked: verification never counts what it could not read as
// good.
type Problem struct {
	// Object is the key of the object at fault, or the file name of a WAL
	// file or history file that has no object at all.
	Object string `json:"object"`
	// Path is the file inside the object, for a partition's files.
	Path    string `json:"path,omitempty"`
	Problem string `json:"problem"`
}

func (p Problem) String() string {
	if p.Path != "" {
		return fmt.Sprintf("%s: %s: %s", p.Object, p.Path, p.Problem)
	}
	return fmt.Sprintf("%s: %s", p.Object, p.Problem)
}

// problems collects the problems of several workers.
type problems struct {
	mu   sync.Mutex
	list []Problem
}

func (ps *problems) add(object, path, format string, args ...any) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.list = append(ps.list, Problem{Object: object, Path: path, Problem: fmt.Sprintf(format, args...)})
}

// sorted returns the problems in a stable order, so two runs on one
// archive print the same report.
func (ps *problems) sorted() []Problem {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := append([]Problem{}, ps.list...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Object != out[j].Object {
			return out[i].Object < out[j].Object
		}
		return out[i].Path < out[j].Path
	})
	return out
}

// readFailure words an error reading an object, so that an object walnut
// could not decrypt reads as unchecked rather than as corrupt.
func readFailure(err error) string {
	if errors.Is(err, archive.ErrNoPrivateKey) {
		return "not checked: it is encrypted and no private key is configured (set WALNUT_PGP_PRIVATE_KEY_FILE)"
	}
	return err.Error()
}
