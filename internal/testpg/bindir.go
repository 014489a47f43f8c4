package testpg

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BinDirEnv overrides where the PostgreSQL server binaries are looked for.
const BinDirEnv = "WALNUT_PG_BINDIR"

// debianBinDir is where Debian's postgresql-15 package puts the server
// binaries; they are not on PATH there, only client wrappers are.
const debianBinDir = "/usr/lib/postgresql/15/bin"

const installHint = "install PostgreSQL 15 (Debian: apt-get install postgresql-15 postgresql-client-15, or run scripts/setup.sh) or set " + BinDirEnv

// BinDir returns the directory holding postgres, initdb, pg_ctl and pgbench:
// $WALNUT_PG_BINDIR, else the Debian PostgreSQL 15 directory, else what
// pg_config reports.
func BinDir() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		if err := hasServer(dir); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinDirEnv, dir, err)
		}
		return dir, nil
	}
	if hasServer(debianBinDir) == nil {
		return debianBinDir, nil
	}
	out, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		return "", fmt.Errorf("no PostgreSQL server in %s and pg_config failed (%v): %s", debianBinDir, err, installHint)
	}
	dir := strings.TrimSpace(string(out))
	if err := hasServer(dir); err != nil {
		return "", fmt.Errorf("pg_config --bindir %s: %w: %s", dir, err, installHint)
	}
	return dir, nil
}

func hasServer(dir string) error {
	for _, name := range []string{"postgres", "initdb", "pg_ctl"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return errors.New(filepath.Join(dir, name) + " is not an executable file")
		}
	}
	return nil
}
