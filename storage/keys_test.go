package storage_test

import (
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/storage"
)

func TestKeyProblem(t *testing.T) {
	for _, key := range []string{"", "/abs", "a//b", "a/", "./a", "a/../b", "a/..", "a\x00b"} {
		problem := storage.KeyProblem(key)
		if problem == "" {
			t.Errorf("KeyProblem(%q) = \"\", want a problem", key)
			continue
		}
		err := storage.InvalidKey(key, problem)
		if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "invalid key ") {
			t.Errorf("InvalidKey(%q) = %v, want a Permanent error naming the key", key, err)
		}
	}
	for _, key := range []string{"k", "wal/000000010000000000000001-abc.zst", "a.b/..c/d..", "odd/a?b#c", `a\b`, "\xff"} {
		if problem := storage.KeyProblem(key); problem != "" {
			t.Errorf("KeyProblem(%q) = %q, want none", key, problem)
		}
	}
	if err := storage.InvalidKey("k", ""); err != nil {
		t.Errorf("InvalidKey without a problem = %v", err)
	}
}
