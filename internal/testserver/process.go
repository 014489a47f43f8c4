// Package testserver starts the real servers walnut's tests run against
// (MinIO, Azurite, Swift, fake-gcs-server, toxiproxy) as child processes
// listening on 127.0.0.1, and stops them when the test ends.
//
// A missing server binary is reported through testpg.Require, so it skips
// a test on a developer's machine and fails it under WALNUT_TEST_REQUIRE=all.
package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// Process is a running server.
type Process struct {
	Name string
	Addr string // host:port it listens on
	Dir  string // its scratch directory
	Log  string // path of its combined stdout and stderr

	cmd  *exec.Cmd
	done chan struct{}
}

// FreePort returns a TCP port on 127.0.0.1 that nobody listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// LookPath finds a server binary on PATH, in the Go bin directory (where
// setup.sh go-installs servers) or under the walnut cache directory, where
// setup.sh puts npm-installed ones.
func LookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	dirs = append(dirs, filepath.Join(CacheDir(), "bin"))
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH, in the Go bin directory or in %s (run scripts/setup.sh)", name, filepath.Join(CacheDir(), "bin"))
}

// CacheDir is where setup.sh keeps servers that are neither Debian packages
// nor go-installed: $WALNUT_CACHE_DIR, else ~/.cache/walnut.
func CacheDir() string { return testpg.CacheDir() }

// Start runs cmd (its Dir, Env and Args already set) as server name and
// waits until addr accepts TCP connections, for at most timeout. The
// process is killed, with its whole process group, when the test ends; its
// log is printed if the test failed.
func Start(t testing.TB, name, addr string, cmd *exec.Cmd, timeout time.Duration) *Process {
	t.Helper()
	p, err := StartErr(t, name, addr, cmd, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// StartErr is Start returning the error instead of failing the test.
func StartErr(t testing.TB, name, addr string, cmd *exec.Cmd, timeout time.Duration) (*Process, error) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Addr: addr, Dir: cmd.Dir, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s log (last 4 KiB):\n%s", name, tail(b, 4096))
			}
		}
	})
	if err := p.waitListening(timeout); err != nil {
		p.Stop()
		b, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%s did not listen on %s: %w\n%s", name, addr, err, tail(b, 2048))
	}
	return p, nil
}

func (p *Process) waitListening(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", p.Addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return errors.New("process exited")
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s: %w", timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop kills the server and its children and waits for it to exit.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
