package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestEnvdirSemantics(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("WALNUT_PREFIX", "file:///from/envdir  \t\nsecond line ignored\n")
	write("EMPTIED", "")
	write("WITH_NUL", "a\x00b")
	write(".hidden", "x")

	e := New([]string{"WALNUT_PREFIX=file:///from/environ", "EMPTIED=was set", "OTHER=kept"})
	if err := e.LoadEnvdir(dir); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, want string
		set        bool
	}{
		{"WALNUT_PREFIX", "file:///from/envdir", true},
		{"EMPTIED", "", false},
		{"WITH_NUL", "a\nb", true},
		{"OTHER", "kept", true},
		{".hidden", "", false},
	}
	for _, c := range cases {
		got, ok := e.Get(c.name)
		if got != c.want || ok != c.set {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", c.name, got, ok, c.want, c.set)
		}
	}
}

func TestPrecedenceFlagOverFilesOverEnviron(t *testing.T) {
	f := filepath.Join(t.TempDir(), "walnut.env")
	if err := os.WriteFile(f, []byte("WALNUT_PREFIX=\"file:///from/file\"\n# comment\nWALNUT_COMPRESSION=lz4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := New([]string{"WALNUT_PREFIX=file:///env", "WALNUT_COMPRESSION=gzip"})
	if err := e.LoadEnvFile(f); err != nil {
		t.Fatal(err)
	}
	if p, from, _ := e.Prefix(); p != "file:///from/file" || from != "WALNUT_PREFIX" {
		t.Fatalf("prefix = %q from %q", p, from)
	}
	e.Set("WALNUT_PREFIX", "file:///flag")
	if p, _, _ := e.Prefix(); p != "file:///flag" {
		t.Fatalf("flag did not win: %q", p)
	}
	if got := e.Getenv("WALNUT_COMPRESSION"); got != "lz4" {
		t.Fatalf("compression = %q", got)
	}
}

func TestPrefixAliases(t *testing.T) {
	e := New([]string{"WALE_S3_PREFIX=s3://bucket/path"})
	p, from, err := e.Prefix()
	if err != nil || p != "s3://bucket/path" || from != "WALE_S3_PREFIX" {
		t.Fatalf("got %q %q %v", p, from, err)
	}
	if _, _, err := New(nil).Prefix(); err == nil {
		t.Fatal("no prefix: want an error")
	}
}

func TestInt(t *testing.T) {
	e := New([]string{"N=4", "BAD=x", "ZERO=0"})
	if n, err := e.Int("N", 1); n != 4 || err != nil {
		t.Fatalf("N: %d %v", n, err)
	}
	if n, err := e.Int("UNSET", 7); n != 7 || err != nil {
		t.Fatalf("UNSET: %d %v", n, err)
	}
	for _, name := range []string{"BAD", "ZERO"} {
		if _, err := e.Int(name, 1); err == nil {
			t.Fatalf("%s: want error", name)
		}
	}
}

func TestPGConnString(t *testing.T) {
	e := New([]string{"PGHOST=/run/pg", "PGPORT=5433", "PGPASSWORD=it's"})
	got := e.PGConnString()
	want := `host='/run/pg' port='5433' password='it\'s' application_name='walnut' connect_timeout='10'`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestOnlyInEnviron(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "AWS_SECRET_ACCESS_KEY"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "AWS_REGION"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e := New([]string{"AWS_ACCESS_KEY_ID=k", "AWS_SECRET_ACCESS_KEY=s", "AWS_REGION=r", "AWS_EMPTY=", "HOME=/root", "OS_PASSWORD=p"})
	if err := e.LoadEnvdir(dir); err != nil {
		t.Fatal(err)
	}
	got := e.OnlyInEnviron("AWS_", "OS_")
	want := []string{"AWS_ACCESS_KEY_ID", "OS_PASSWORD"}
	if !slices.Equal(got, want) {
		t.Errorf("OnlyInEnviron = %q, want %q", got, want)
	}
}
