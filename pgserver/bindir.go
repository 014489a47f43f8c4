package pgserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// BinDir finds the server binaries of PostgreSQL major version major:
// dir if given (it must hold that version), else where the Debian and
// PGDG RPM packages put each version, else what pg_config on PATH reports
// if it is that version. A restore only starts on the version that wrote
// it.
func BinDir(major int, dir string) (string, error) {
	if dir != "" {
		if err := checkBinDir(dir, major); err != nil {
			return "", err
		}
		return dir, nil
	}
	candidates := []string{
		fmt.Sprintf("/usr/lib/postgresql/%d/bin", major), // Debian, Ubuntu
		fmt.Sprintf("/usr/pgsql-%d/bin", major),          // PGDG RPMs
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	var tried []string
	for _, c := range candidates {
		err := checkBinDir(c, major)
		if err == nil {
			return c, nil
		}
		tried = append(tried, err.Error())
	}
	return "", fmt.Errorf("no PostgreSQL %d server binaries found (%s): install PostgreSQL %d, or give its bin directory with --pg-bindir or WALNUT_PG_BINDIR",
		major, strings.Join(tried, "; "), major)
}

func checkBinDir(dir string, major int) error {
	exe := filepath.Join(dir, "postgres")
	fi, err := os.Stat(exe)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New(exe + " is not an executable file")
	}
	got, err := Version(dir)
	if err != nil {
		return err
	}
	if got != major {
		return fmt.Errorf("%s is PostgreSQL %d, the backup needs %d", exe, got, major)
	}
	return nil
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// Version is the major version of the postgres binary in dir.
func Version(dir string) (int, error) {
	exe := filepath.Join(dir, "postgres")
	out, err := exec.Command(exe, "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("%s --version: %w", exe, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("%s --version printed %q: not PostgreSQL", exe, strings.TrimSpace(string(out)))
	}
	return strconv.Atoi(string(m[1]))
}
