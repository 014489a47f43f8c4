package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An envdir file may hold anything: its value is the first line, trailing
// blanks cut, NUL bytes turned into newlines, and reading never panics.
func FuzzLoadEnvdir(f *testing.F) {
	f.Add([]byte("file:///var/lib/walnut\n"))
	f.Add([]byte("a\x00b  \t\nsecond line"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, content []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "WALNUT_PREFIX"), content, 0o600); err != nil {
			t.Fatal(err)
		}
		e := New(nil)
		if err := e.LoadEnvdir(dir); err != nil {
			t.Fatal(err)
		}
		v, ok := e.Get("WALNUT_PREFIX")
		if len(content) == 0 {
			if ok {
				t.Fatalf("an empty file set the variable to %q", v)
			}
			return
		}
		first, _, _ := strings.Cut(string(content), "\n")
		want := strings.ReplaceAll(strings.TrimRight(first, " \t"), "\x00", "\n")
		if !ok || v != want {
			t.Fatalf("value %q (set %v), want %q", v, ok, want)
		}
	})
}

// A dotenv file of any content loads or fails, never panics.
func FuzzLoadEnvFile(f *testing.F) {
	f.Add([]byte("WALNUT_PREFIX=s3://bucket/path\n# comment\nAWS_REGION='eu-west-1'\n"))
	f.Add([]byte("export A=\"multi\nline\"\nB=${A}\n"))
	f.Fuzz(func(t *testing.T, content []byte) {
		p := filepath.Join(t.TempDir(), "walnut.env")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		New(nil).LoadEnvFile(p)
	})
}
