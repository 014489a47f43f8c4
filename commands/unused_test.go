package commands

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/commands/pgpsettings"
	"github.com/walnut-pg/walnut/internal/fixture"
)

// An encryption setting walnut does not use stops every write, with one
// line naming it, before anything is stored; reads are not affected.
func TestWritesRefuseUnusedEncryptionSettings(t *testing.T) {
	seg := fixture.Segment(t, t.TempDir(), "000000010000000000000001", 1)
	for name := range pgpsettings.UnusedEncryption {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			env := []string{"WALNUT_PREFIX=file://" + dir, name + "=DEADBEEF"}
			for _, args := range [][]string{{"wal-push", seg}, {"backup-push", t.TempDir()}} {
				var stderr strings.Builder
				code := Main(append([]string{"walnut"}, args...), env, io.Discard, &stderr)
				line := strings.TrimSpace(stderr.String())
				if code != ExitUsage || !strings.Contains(line, name+" is set") || strings.Contains(line, "\n") {
					t.Errorf("%s: exit %d, want %d and one line naming %s: %s", args[0], code, ExitUsage, name, line)
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("stored %v", entries)
			}
			// Reading needs no encryption setting: the listing runs.
			if err := os.WriteFile(filepath.Join(dir, "walnut.json"), []byte(`{"format": 1, "system_identifier": "7"}`+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if code := Main([]string{"walnut", "backup-list"}, env, io.Discard, io.Discard); code != ExitOK {
				t.Errorf("backup-list: exit %d", code)
			}
		})
	}
}
