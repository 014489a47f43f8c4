package testpg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ServerUser is the system account the server runs as when the tests run as
// root. The Debian packages create it.
const ServerUser = "postgres"

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// AsRoot reports whether commands are switched to ServerUser.
func AsRoot() bool { return os.Geteuid() == 0 }

type account struct {
	uid, gid int
	home     string
}

var serverAccount = sync.OnceValues(func() (account, error) {
	u, err := user.Lookup(ServerUser)
	if err != nil {
		return account{}, fmt.Errorf("look up user %s: %w (install postgresql-15, which creates it)", ServerUser, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return account{}, fmt.Errorf("user %s uid %q: %w", ServerUser, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return account{}, fmt.Errorf("user %s gid %q: %w", ServerUser, u.Gid, err)
	}
	return account{uid: uid, gid: gid, home: u.HomeDir}, nil
})

// CheckServerUser reports why commands cannot run as the server user, or nil.
func CheckServerUser() error {
	if !AsRoot() {
		return nil
	}
	if _, err := serverAccount(); err != nil {
		return err
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		return fmt.Errorf("running as root needs runuser (util-linux): %w", err)
	}
	return nil
}

// Command prepares name to run as the server user with exactly env, plus PATH
// and HOME unless env sets them. PATH starts with BinDir so that psql and
// pgbench are the server's version. Dir defaults to os.TempDir() because the
// test's working directory may be closed to the server user; callers may
// change it. Cancelling ctx sends SIGTERM, which runuser passes on.
func Command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	full := withDefaults(env)
	var cmd *exec.Cmd
	if AsRoot() {
		// runuser keeps most of root's environment and rewrites some of it;
		// env -i makes the command's environment exactly what we list.
		argv := []string{"-u", ServerUser, "--", "env", "-i"}
		argv = append(argv, full...)
		argv = append(argv, name)
		argv = append(argv, args...)
		cmd = exec.CommandContext(ctx, "runuser", argv...)
		cmd.Env = []string{"PATH=" + lookupEnv(full, "PATH")}
	} else {
		cmd = exec.CommandContext(ctx, name, args...)
		cmd.Env = full
	}
	cmd.Dir = os.TempDir()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func withDefaults(env []string) []string {
	// env(1) would take an entry without "=" for the command to run.
	var full []string
	for _, kv := range env {
		if strings.Contains(kv, "=") {
			full = append(full, kv)
		}
	}
	if lookupEnv(env, "PATH") == "" {
		path := os.Getenv("PATH")
		if path == "" {
			path = defaultPath
		}
		if dir, err := BinDir(); err == nil {
			path = dir + string(os.PathListSeparator) + path
		}
		full = append(full, "PATH="+path)
	}
	if lookupEnv(env, "HOME") == "" {
		if home := serverHome(); home != "" {
			full = append(full, "HOME="+home)
		}
	}
	return full
}

func serverHome() string {
	if AsRoot() {
		if acct, err := serverAccount(); err == nil {
			return acct.home
		}
		return ""
	}
	home, _ := os.UserHomeDir()
	return home
}

// lookupEnv returns the last value of key in env, as exec does.
func lookupEnv(env []string, key string) string {
	value := ""
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			value = v
		}
	}
	return value
}

// SharedTempDir returns a fresh directory under os.TempDir() that the server
// user owns (mode 0700) and the test process can also reach, removed when the
// test ends. Everything the server or its archive_command touches belongs
// here.
func SharedTempDir(t testing.TB) string {
	t.Helper()
	if err := CheckServerUser(); err != nil {
		Require(t, "postgres", err)
	}
	dir, err := os.MkdirTemp("", "walnut-testpg-")
	if err != nil {
		t.Fatalf("create shared temp dir: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatalf("chmod %s: %v", dir, err)
	}
	if err := ChownToServer(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ChownToServer hands path and everything below it to the server user when
// running as root, e.g. a data directory a test restored in-process, which
// PostgreSQL refuses to start unless it owns it. Otherwise it does nothing.
func ChownToServer(path string) error {
	if !AsRoot() {
		return nil
	}
	acct, err := serverAccount()
	if err != nil {
		return err
	}
	return filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, acct.uid, acct.gid); err != nil {
			return fmt.Errorf("chown %s to %s: %w", p, ServerUser, err)
		}
		return nil
	})
}

// run runs cmd and returns its error with its combined output attached.
func run(cmd *exec.Cmd) (string, error) {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out), nil
}

var errNotRunning = errors.New("server is not running")
