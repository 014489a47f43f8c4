package cliargs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/walnut-pg/walnut/check"
	"github.com/walnut-pg/walnut/config"
)

// WALEValueFlags are WAL-E's global flags that take a value, by every
// name (commands defines them): reading archive_command must skip their
// values.
var WALEValueFlags = []string{"s3-prefix", "wabs-prefix", "gs-prefix", "file-prefix", "gpg-key-id",
	"k", "aws-access-key-id", "a", "wabs-account-name", "gs-access-key-id"}

// InspectArchiveCommand reads a server's archive_command as a walnut
// command line, as the shell PostgreSQL starts would run it: which
// executable, whether it is walnut wal-push with %p, and which prefix it
// archives to once its environment, envdir wrappers and walnut's own
// --envdir, --env-file and --prefix are applied (the precedence walnut
// itself uses). serverEnv is the server's environment, nil if unknown.
func InspectArchiveCommand(command string, serverEnv []string) check.ArchiveCommand {
	var ac check.ArchiveCommand
	words, err := ShellWords(command)
	if err != nil {
		ac.Problem = err.Error()
		return ac
	}
	cmd := commandWithWALPush(words)
	if cmd == nil {
		ac.Problem = "does not run walnut wal-push"
		return ac
	}
	environ := append([]string{}, serverEnv...)
	var wrapperEnvdir string
	i := 0
	// VAR=value words, then env(1) and daemontools' envdir as wrappers.
	for i < len(cmd) {
		w := cmd[i]
		switch base := filepath.Base(w); {
		case isAssignment(w):
			environ = append(environ, w)
			i++
		case base == "env":
			i++
			for i < len(cmd) && (isAssignment(cmd[i]) || strings.HasPrefix(cmd[i], "-")) {
				if isAssignment(cmd[i]) {
					environ = append(environ, cmd[i])
				}
				i++
			}
		case base == "envdir" && i+1 < len(cmd):
			wrapperEnvdir = cmd[i+1]
			ac.Envdir = wrapperEnvdir
			i += 2
		default:
			goto exe
		}
	}
exe:
	if i >= len(cmd) {
		ac.Problem = "does not run walnut wal-push"
		return ac
	}
	ac.Executable = cmd[i]
	if !strings.Contains(filepath.Base(ac.Executable), "walnut") {
		ac.Problem = fmt.Sprintf("runs %s, not walnut", ac.Executable)
		return ac
	}
	var envdir, envFile, prefix string
	j := i + 1
	for ; j < len(cmd) && cmd[j] != "wal-push"; j++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(cmd[j], "-"), "=")
		if !strings.HasPrefix(cmd[j], "-") {
			ac.Problem = fmt.Sprintf("runs walnut %s, not wal-push", cmd[j])
			return ac
		}
		if name == "envdir" || name == "env-file" || name == "prefix" || name == "log-format" || slices.Contains(WALEValueFlags, name) {
			if !hasValue {
				if j+1 >= len(cmd) {
					ac.Problem = "--" + name + " without a value"
					return ac
				}
				j++
				value = cmd[j]
			}
		}
		switch name {
		case "envdir":
			envdir = value
		case "env-file":
			envFile = value
		case "prefix", "s3-prefix", "wabs-prefix", "gs-prefix", "file-prefix":
			prefix = value
		}
	}
	if j >= len(cmd) || !contains(cmd[j+1:], "%p") {
		ac.Problem = "does not pass %p to wal-push"
		return ac
	}
	if err := checkExecutable(ac.Executable, environ); err != nil {
		ac.Problem = err.Error()
		return ac
	}
	ac.Walnut = true
	if envdir != "" {
		ac.Envdir = envdir
	}
	ac.EnvFile = envFile

	// Each layer as walnut stacks them: the process environment (the
	// server's, with the assignments and the envdir wrapper's variables),
	// then --envdir, then --env-file, then --prefix.
	env := config.New(environ)
	type layer struct {
		what string
		env  *config.Env
	}
	var layers []layer
	load := func(what, path string, read func(*config.Env) error) error {
		l := config.New(nil)
		if err := read(l); err != nil {
			return err
		}
		if err := read(env); err != nil {
			return err
		}
		layers = append([]layer{{what + " " + path, l}}, layers...) // later layers win
		return nil
	}
	if wrapperEnvdir != "" {
		if err := load("envdir", wrapperEnvdir, func(e *config.Env) error { return e.LoadEnvdir(wrapperEnvdir) }); err != nil {
			ac.From = fmt.Sprintf("cannot read the envdir it runs under: %v", err)
			return ac
		}
	}
	if envdir != "" {
		if err := load("--envdir", envdir, func(e *config.Env) error { return e.LoadEnvdir(envdir) }); err != nil {
			ac.From = fmt.Sprintf("cannot read its --envdir: %v", err)
			return ac
		}
	}
	if envFile != "" {
		if err := load("--env-file", envFile, func(e *config.Env) error { return e.LoadEnvFile(envFile) }); err != nil {
			ac.From = fmt.Sprintf("cannot read its --env-file: %v", err)
			return ac
		}
	}
	if prefix != "" {
		ac.Prefix, ac.From = prefix, "--prefix"
		return ac
	}
	p, from, err := env.Prefix()
	switch {
	case err == nil:
		ac.Prefix, ac.From = p, from+" in the server's environment"
		for _, l := range layers {
			if l.env.FromFile(from) {
				ac.From = from + " in " + l.what
				break
			}
		}
	case serverEnv == nil:
		ac.From = "it is not in archive_command or its configuration files, and the server's environment cannot be read from here"
	default:
		ac.Walnut = false
		ac.Problem = "names no archive prefix (no --prefix, and no WALNUT_PREFIX in its envdir, env file or the server's environment): wal-push fails"
	}
	return ac
}

// commandWithWALPush picks, from a command line that may chain several
// commands (a; b && c | d), the one that runs wal-push.
func commandWithWALPush(words []string) []string {
	var cur []string
	for _, w := range append(words, ";") {
		switch w {
		case ";", "&&", "||", "|", "&":
			if contains(cur, "wal-push") {
				return cur
			}
			cur = nil
		default:
			cur = append(cur, w)
		}
	}
	return nil
}

func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	if !ok || name == "" {
		return false
	}
	for i, c := range name {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func contains(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

// checkExecutable makes sure the shell would find exe: by its path, or on
// the server's PATH.
func checkExecutable(exe string, environ []string) error {
	if !strings.Contains(exe, "/") {
		path := ""
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				path = v
			}
		}
		if path == "" {
			return nil // the server's PATH is unknown: the round trip decides
		}
		for _, dir := range filepath.SplitList(path) {
			if isExecutable(filepath.Join(dir, exe)) {
				return nil
			}
		}
		return fmt.Errorf("%s is not on the server's PATH (%s): give its absolute path", exe, path)
	}
	if !isExecutable(exe) {
		if _, err := exec.LookPath(exe); err != nil {
			return fmt.Errorf("%s: %w", exe, unwrapExec(err))
		}
	}
	return nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0
}

func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// ShellWords splits a command line as sh would for a simple command:
// blanks separate words, '...' and "..." quote, backslash escapes, and ;
// & | are words of their own. Expansions are left as they are.
func ShellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == '"':
			inWord = true
			for i++; ; i++ {
				if i >= len(s) {
					return nil, errors.New(`unterminated " quote`)
				}
				if s[i] == '"' {
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`\n", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			flush()
		case c == ';' || c == '&' || c == '|':
			flush()
			op := string(c)
			if i+1 < len(s) && (c == '&' || c == '|') && s[i+1] == c {
				op += string(c)
				i++
			}
			words = append(words, op)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words, nil
}
