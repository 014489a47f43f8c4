package all

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testserver"
	"github.com/walnut-pg/walnut/storage"
)

// TestOpenSwift checks the wiring: a swift:// prefix opens a working store
// behind the retry decorator, and a missing container fails at once
// instead of being retried.
func TestOpenSwift(t *testing.T) {
	srv := testserver.Swift(t)
	srv.CreateContainer(t, "archive")
	env := map[string]string{}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }

	s, err := Open(t.Context(), "swift://archive/db1", getenv)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.Put(t.Context(), "walnut.json", strings.NewReader("{}"), 2); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if info, err := s.Stat(t.Context(), "walnut.json"); err != nil || info.Size != 2 {
		t.Errorf("Stat = %+v, %v", info, err)
	}
	if _, err := s.Stat(t.Context(), "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of a missing key: %v, want ErrNotFound", err)
	}

	missing, err := Open(t.Context(), "swift://no-such-container/db1", getenv)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer missing.Close()
	start := time.Now()
	_, err = missing.Stat(t.Context(), "walnut.json")
	if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "no-such-container") {
		t.Errorf("Stat in a missing container = %v, want a permanent error naming it", err)
	}
	// The retry policy's waits add up to seconds; one attempt takes far less.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stat in a missing container took %s: it was retried", d)
	}
}
