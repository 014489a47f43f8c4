package cliargs

import (
	"fmt"
	"path/filepath"
	"strings"
)

// ShellQuote quotes s for sh, leaving plain words as they are.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// CommandLine joins words into a shell command line, each quoted as
// needed.
func CommandLine(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = ShellQuote(w)
	}
	return strings.Join(quoted, " ")
}

// ConfigArgs are the global flags that give another walnut process a
// run's configuration: the envdir and env file by absolute path, and
// --prefix when carryPrefix (the prefix was not read from one of those
// files). A prefix from the process environment travels too, because a
// process PostgreSQL starts does not share that environment.
// restore_command and the prefetch child are both built from it.
func ConfigArgs(envdir, envFile, prefix string, carryPrefix bool) ([]string, error) {
	var args []string
	for _, f := range []struct{ flag, path string }{{"--envdir", envdir}, {"--env-file", envFile}} {
		if f.path == "" {
			continue
		}
		abs, err := filepath.Abs(f.path)
		if err != nil {
			return nil, err
		}
		args = append(args, f.flag, abs)
	}
	if carryPrefix {
		args = append(args, "--prefix", prefix)
	}
	return args, nil
}

// Mapping reads the values of a repeatable --flag given as FROM=TO (want
// says so in the error), neither side empty.
func Mapping(flag, want string, values []string) (map[string]string, error) {
	m := map[string]string{}
	for _, v := range values {
		from, to, ok := strings.Cut(v, "=")
		if !ok || from == "" || to == "" {
			return nil, fmt.Errorf("--%s %q: want %s", flag, v, want)
		}
		m[from] = to
	}
	return m, nil
}

// NameValues reads the values of a repeatable --flag given as NAME=VALUE,
// in order; the name is trimmed and must not be empty, the value may be.
func NameValues(flag string, opts []string) ([][2]string, error) {
	var out [][2]string
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--%s %q: want NAME=VALUE", flag, o)
		}
		out = append(out, [2]string{strings.TrimSpace(k), v})
	}
	return out, nil
}
