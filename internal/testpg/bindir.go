package testpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BinDirEnv overrides where the PostgreSQL server binaries are looked for.
const BinDirEnv = "WALNUT_PG_BINDIR"

// DefaultMajor is the PostgreSQL the suite runs on unless a test asks for
// another major: Debian 12's own, and the only one with client tools here.
const DefaultMajor = 15

// debianBinDir is where Debian's postgresql-15 package puts the server
// binaries; they are not on PATH there, only client wrappers are.
const debianBinDir = "/usr/lib/postgresql/15/bin"

const installHint = "install PostgreSQL 15 (Debian: apt-get install postgresql-15 postgresql-client-15, or run scripts/setup.sh) or set " + BinDirEnv

// BinDir returns the directory holding postgres, initdb, pg_ctl and pgbench:
// $WALNUT_PG_BINDIR, else the Debian PostgreSQL 15 directory, else what
// pg_config reports. It also holds the client tools (psql, pgbench,
// pg_basebackup, pg_verifybackup) used against servers of every major.
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

// CacheDir is where scripts/setup.sh keeps what is neither a Debian
// package nor go-installed: $WALNUT_CACHE_DIR, else ~/.cache/walnut.
func CacheDir() string {
	if d := os.Getenv("WALNUT_CACHE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "walnut")
	}
	return filepath.Join(os.TempDir(), "walnut-cache")
}

// MajorBinDir returns the server binaries (postgres, initdb, pg_ctl) of
// PostgreSQL major: BinDir for DefaultMajor, else
// CacheDir()/postgresql/<major>/bin, where scripts/setup.sh installs one
// server per major. It checks that the server there is of that major and
// that the server user can run it.
func MajorBinDir(major int) (string, error) {
	dir := filepath.Join(CacheDir(), "postgresql", strconv.Itoa(major), "bin")
	if major == DefaultMajor {
		var err error
		if dir, err = BinDir(); err != nil {
			return "", err
		}
	} else if err := hasServer(dir); err != nil {
		return "", fmt.Errorf("PostgreSQL %d server: %w (scripts/setup.sh installs it)", major, err)
	}
	v, _ := checkedMajors.LoadOrStore(dir, sync.OnceValue(func() error { return checkServerMajor(dir, major) }))
	if err := v.(func() error)(); err != nil {
		return "", err
	}
	return dir, nil
}

// checkedMajors holds one check per directory: the answer does not change
// while the tests run.
var checkedMajors sync.Map

// checkServerMajor runs dir/postgres --version as the server user would
// run it, which fails when that user cannot reach dir (a cache under a
// home directory closed to others: scripts/setup.sh opens the way).
func checkServerMajor(dir string, major int) error {
	if err := CheckServerUser(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := run(Command(ctx, nil, filepath.Join(dir, "postgres"), "--version"))
	if err != nil {
		return fmt.Errorf("PostgreSQL %d server in %s cannot be run as %s (scripts/setup.sh lets it through the cache directory): %w", major, dir, ServerUser, err)
	}
	// "postgres (PostgreSQL) 18.4"
	fields := strings.Fields(out)
	if len(fields) == 0 || !strings.HasPrefix(fields[len(fields)-1], strconv.Itoa(major)+".") {
		return fmt.Errorf("%s is %q, not PostgreSQL %d", filepath.Join(dir, "postgres"), strings.TrimSpace(out), major)
	}
	return nil
}

// dataDirMajor reads the major version a data directory belongs to.
func dataDirMajor(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION"))
	if err != nil {
		return 0, err
	}
	major, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", filepath.Join(dataDir, "PG_VERSION"), err)
	}
	return major, nil
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
