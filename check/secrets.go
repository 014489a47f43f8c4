package check

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// checkSecrets makes sure that no other user can read a file holding a
// secret: a private key, its passphrase, a cloud credential, or an envdir
// or env file (they hold the store's credentials). Group access is only
// warned about: the README's envdir is group-readable (0750) so that a
// group of operators can use it.
func (c *checker) checkSecrets() {
	const name = "secrets"
	secrets := append([]SecretFile{}, c.o.Secrets...)
	if c.archCmd != nil {
		if c.archCmd.Envdir != "" {
			secrets = append(secrets, SecretFile{Setting: "archive_command's --envdir", Path: c.archCmd.Envdir, Dir: true})
		}
		if c.archCmd.EnvFile != "" {
			secrets = append(secrets, SecretFile{Setting: "archive_command's --env-file", Path: c.archCmd.EnvFile})
		}
	}
	seen := map[string]bool{}
	var fails, warns, ok []string
	checkFile := func(setting, path string, dir bool) {
		abs, err := filepath.Abs(path)
		if err == nil {
			path = abs
		}
		if seen[path] {
			return
		}
		seen[path] = true
		fi, err := os.Stat(path)
		if err != nil {
			fails = append(fails, fmt.Sprintf("%s %s: %v", setting, path, err))
			return
		}
		m := fi.Mode().Perm()
		switch {
		case dir && m&0o007 != 0, !dir && m&0o004 != 0:
			fails = append(fails, fmt.Sprintf("%s %s is open to other users (mode %04o)", setting, path, m))
		case !dir && m&0o040 != 0:
			warns = append(warns, fmt.Sprintf("%s %s is readable by its group (mode %04o)", setting, path, m))
		default:
			ok = append(ok, path)
		}
	}
	for _, s := range secrets {
		if s.Path == "" {
			continue
		}
		checkFile(s.Setting, s.Path, s.Dir)
		if !s.Dir {
			continue
		}
		entries, err := os.ReadDir(s.Path)
		if err != nil {
			continue // reported by the directory's own check if it matters
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				checkFile(s.Setting, filepath.Join(s.Path, e.Name()), false)
			}
		}
	}
	fix := "chmod 600 the files and 700 (or 750) the envdir; they must stay readable by the user PostgreSQL runs archive_command as"
	switch {
	case len(fails) > 0:
		c.add(name, Fail, strings.Join(append(fails, warns...), "; "), fix)
	case len(warns) > 0:
		c.add(name, Warn, strings.Join(warns, "; "), fix)
	case len(ok) == 0:
		c.add(name, OK, "no envdir, env file or key file configured", "")
	default:
		c.add(name, OK, fmt.Sprintf("%d files and directories holding secrets are closed to other users", len(ok)), "")
	}
}
