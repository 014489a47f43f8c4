package commands

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The arguments configArgs rebuilds must give a walnut that PostgreSQL
// starts, with none of this shell's environment, the same archive as this
// run: for every combination of --prefix, an envdir, an env file and the
// process environment naming the prefix.
func TestConfigArgsCarryThePrefixWhereverItCameFrom(t *testing.T) {
	for mask := range 16 {
		flag, inEnvdir, inEnvFile, inEnviron := mask&1 != 0, mask&2 != 0, mask&4 != 0, mask&8 != 0
		name := fmt.Sprintf("flag=%v/envdir=%v/envfile=%v/environ=%v", flag, inEnvdir, inEnvFile, inEnviron)
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			parent := &globals{stderr: io.Discard, logFormat: "text"}
			// The envdir and the env file are given in every case: they
			// may hold credentials even when the prefix is elsewhere.
			parent.envdir = filepath.Join(dir, "env")
			if err := os.Mkdir(parent.envdir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(parent.envdir, "AWS_REGION"), []byte("eu-west-1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			parent.envFile = filepath.Join(dir, "walnut.env")
			envFile := "WALNUT_COMPRESSION=lz4\n"
			if inEnvdir {
				if err := os.WriteFile(filepath.Join(parent.envdir, "WALNUT_PREFIX"), []byte("file:///from/envdir\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if inEnvFile {
				envFile += "WALNUT_PREFIX=file:///from/envfile\n"
			}
			if err := os.WriteFile(parent.envFile, []byte(envFile), 0o600); err != nil {
				t.Fatal(err)
			}
			if inEnviron {
				parent.environ = []string{"WALNUT_PREFIX=file:///from/environ"}
			}
			if flag {
				parent.prefix = "file:///from/flag"
			}
			if err := parent.before(nil); err != nil {
				t.Fatal(err)
			}
			want, _, perr := parent.env.Prefix()
			args, err := parent.configArgs()
			if perr != nil {
				if err == nil {
					t.Fatalf("no prefix anywhere, yet configArgs gave %q", args)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(args, "--envdir") || !slices.Contains(args, "--env-file") {
				t.Errorf("args %q lack the envdir or the env file", args)
			}

			// The child: PostgreSQL's environment, none of ours.
			child := &globals{stderr: io.Discard, logFormat: "text"}
			for i := 0; i < len(args); i += 2 {
				switch args[i] {
				case "--envdir":
					child.envdir = args[i+1]
				case "--env-file":
					child.envFile = args[i+1]
				case "--prefix":
					child.prefix = args[i+1]
				default:
					t.Fatalf("unexpected argument %q in %q", args[i], args)
				}
			}
			if err := child.before(nil); err != nil {
				t.Fatal(err)
			}
			got, _, err := child.env.Prefix()
			if err != nil || got != want {
				t.Errorf("args %q: the child's prefix is %q (%v), this run's %q", args, got, err, want)
			}
		})
	}
}
