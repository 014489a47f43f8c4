package cliargs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestShellWords(t *testing.T) {
	for in, want := range map[string][]string{
		`/usr/local/bin/walnut --envdir /etc/walnut/env wal-push %p`: {"/usr/local/bin/walnut", "--envdir", "/etc/walnut/env", "wal-push", "%p"},
		`'/opt/my walnut/walnut' --prefix "s3://b/p" wal-push "%p"`:  {"/opt/my walnut/walnut", "--prefix", "s3://b/p", "wal-push", "%p"},
		`test ! -f x && cp %p /a/%f;walnut wal-push %p`:              {"test", "!", "-f", "x", "&&", "cp", "%p", "/a/%f", ";", "walnut", "wal-push", "%p"},
		`a\ b "c\"d" e`: {"a b", `c"d`, "e"},
	} {
		got, err := ShellWords(in)
		if err != nil || !equal(got, want) {
			t.Errorf("%s: %q (%v), want %q", in, got, err, want)
		}
	}
	if _, err := ShellWords(`walnut 'wal-push %p`); err == nil {
		t.Error("an unterminated quote should be an error")
	}
}

func equal(a, b []string) bool { return slices.Equal(a, b) }

func TestInspectArchiveCommand(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "walnut")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	envdir := filepath.Join(dir, "env")
	os.Mkdir(envdir, 0o700)
	os.WriteFile(filepath.Join(envdir, "WALNUT_PREFIX"), []byte("s3://bucket/db1\n"), 0o600)
	envFile := filepath.Join(dir, "walnut.env")
	os.WriteFile(envFile, []byte("WALNUT_PREFIX=file:///from/envfile\n"), 0o600)
	serverEnv := []string{"PATH=" + dir + ":/usr/bin", "WALNUT_PREFIX=file:///from/server"}

	for _, c := range []struct {
		cmd             string
		env             []string
		walnut          bool
		prefix, problem string
	}{
		{cmd: exe + " --envdir " + envdir + " wal-push %p", env: serverEnv, walnut: true, prefix: "s3://bucket/db1"},
		{cmd: exe + " --env-file=" + envFile + " wal-push --pool-size 4 %p", env: serverEnv, walnut: true, prefix: "file:///from/envfile"},
		{cmd: exe + " --envdir " + envdir + " --prefix file:///flag wal-push %p", env: serverEnv, walnut: true, prefix: "file:///flag"},
		{cmd: "envdir " + envdir + " walnut wal-push %p", env: serverEnv, walnut: true, prefix: "s3://bucket/db1"},
		{cmd: "WALNUT_PREFIX=file:///assigned " + exe + " wal-push %p", env: serverEnv, walnut: true, prefix: "file:///assigned"},
		{cmd: "walnut wal-push %p", env: serverEnv, walnut: true, prefix: "file:///from/server"},
		{cmd: exe + " wal-push %p", env: nil, walnut: true, prefix: ""},
		{cmd: exe + " wal-push %p", env: []string{"PATH=/usr/bin"}, problem: "names no archive prefix"},
		{cmd: "/bin/false", env: serverEnv, problem: "does not run walnut wal-push"},
		{cmd: "wal-g wal-push %p", env: serverEnv, problem: "runs wal-g, not walnut"},
		{cmd: exe + " wal-push /tmp/x", env: serverEnv, problem: "does not pass %p"},
		{cmd: "/nonexistent/walnut wal-push %p", env: serverEnv, problem: "/nonexistent/walnut"},
		{cmd: "walnut wal-push %p", env: []string{"PATH=/usr/bin", "WALNUT_PREFIX=file:///x"}, problem: "not on the server's PATH"},
	} {
		ac := InspectArchiveCommand(c.cmd, c.env)
		if ac.Walnut != c.walnut || ac.Prefix != c.prefix || !strings.Contains(ac.Problem, c.problem) {
			t.Errorf("%s: %+v; want walnut=%v prefix %q problem %q", c.cmd, ac, c.walnut, c.prefix, c.problem)
		}
	}
}
