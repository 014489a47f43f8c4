// Package config reads walnut's settings from the process environment and
// from files in the formats operators already use: daemontools envdirs (as
// WAL-E deployments do) and dotenv files.
package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/joho/godotenv"
)

// Env is a layered view of settings: values loaded from an envdir or env
// file win over the process environment. It is built once per command and
// passed down; nothing reads os.Getenv behind its back.
type Env struct {
	files   map[string]string // from --envdir / --env-file
	unset   map[string]bool   // envdir files that are empty: daemontools removes the variable
	environ map[string]string // the process environment
}

// New returns an Env over environ (in os.Environ's "K=V" form).
func New(environ []string) *Env {
	e := &Env{files: map[string]string{}, unset: map[string]bool{}, environ: map[string]string{}}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			e.environ[k] = v
		}
	}
	return e
}

// Get returns the value of name and whether it is set.
func (e *Env) Get(name string) (string, bool) {
	if v, ok := e.files[name]; ok {
		return v, true
	}
	if e.unset[name] {
		return "", false
	}
	v, ok := e.environ[name]
	return v, ok
}

// Getenv returns the value of name, or "" when unset, like os.Getenv.
func (e *Env) Getenv(name string) string {
	v, _ := e.Get(name)
	return v
}

// First returns the first of names that is set to a non-empty value, and
// which name it was.
func (e *Env) First(names ...string) (value, name string) {
	for _, n := range names {
		if v, ok := e.Get(n); ok && v != "" {
			return v, n
		}
	}
	return "", ""
}

// Set overrides name, as a command-line flag does.
func (e *Env) Set(name, value string) {
	e.files[name] = value
	delete(e.unset, name)
}

// LoadEnvdir reads a daemontools-style envdir: each file names a variable
// whose value is the file's first line, with trailing spaces and tabs
// removed and NUL bytes turned into newlines. An empty file unsets the
// variable.
func (e *Env) LoadEnvdir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("envdir %s: %w", dir, err)
	}
	for _, ent := range entries {
		name := ent.Name()
		if strings.HasPrefix(name, ".") || strings.Contains(name, "=") || ent.IsDir() {
			continue
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("envdir %s: %w", path, err)
		}
		if len(b) == 0 {
			delete(e.files, name)
			e.unset[name] = true
			continue
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		}
		b = bytes.TrimRight(b, " \t")
		b = bytes.ReplaceAll(b, []byte{0}, []byte{'\n'})
		e.Set(name, string(b))
	}
	return nil
}

// LoadEnvFile reads a dotenv file (KEY=value lines, quotes, comments).
func (e *Env) LoadEnvFile(path string) error {
	m, err := godotenv.Read(path)
	if err != nil {
		return fmt.Errorf("env file %s: %w", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e.Set(k, m[k])
	}
	return nil
}

// Load is the environment environ with the envdir and then the env file
// (either "" for none) loaded over it, as walnut's global flags give them.
// On an error it returns what was loaded before it, never nil.
func Load(environ []string, envdir, envFile string) (*Env, error) {
	e := New(environ)
	if envdir != "" {
		if err := e.LoadEnvdir(envdir); err != nil {
			return e, err
		}
	}
	if envFile != "" {
		if err := e.LoadEnvFile(envFile); err != nil {
			return e, err
		}
	}
	return e, nil
}

// OnlyInEnviron returns, sorted, the names starting with one of prefixes
// that are set only in the process environment, not by a file or a flag.
// A command PostgreSQL runs later (restore_command) does not inherit them.
func (e *Env) OnlyInEnviron(prefixes ...string) []string {
	var names []string
	for name, v := range e.environ {
		if v == "" || e.unset[name] {
			continue
		}
		if _, ok := e.files[name]; ok {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				names = append(names, name)
				break
			}
		}
	}
	sort.Strings(names)
	return names
}

// StoreVarPrefixes name the variables a walnut process may need to reach
// the archive at prefix and decrypt it: that store's credentials and
// settings, and the private key (backup-fetch warns when restore_command
// would not see them). The prefix itself travels as --prefix.
func StoreVarPrefixes(prefix string) []string {
	names := []string{"WALNUT_PGP_", "WALG_PGP_", "GNUPGHOME"}
	scheme, _, _ := strings.Cut(strings.ToLower(prefix), "://")
	switch scheme {
	case "s3":
		names = append(names, "AWS_", "WALE_S3_ENDPOINT", "WALNUT_S3_")
	case "azure", "wabs":
		names = append(names, "AZURE_", "WABS_", "WALNUT_AZURE_")
	case "swift":
		names = append(names, "SWIFT_", "OS_", "WALNUT_SWIFT_")
	case "gs":
		names = append(names, "GOOGLE_", "STORAGE_EMULATOR_HOST", "WALNUT_GCS_")
	}
	return names
}
