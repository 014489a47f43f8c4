// Package pgserver runs a throwaway PostgreSQL server on a data directory
// for the restore drill: on a private socket directory, without TCP, as
// the data directory's owner when started by root, in its own process
// group so that stopping it leaves nothing running. It knows nothing of
// walnut's archive; the caller says what the server should run with.
package pgserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// User is the system account a server runs as.
type User struct {
	Name     string
	UID, GID uint32
	Home     string
}

// LookupUser finds a system account by name.
func LookupUser(name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user %s: %w", name, err)
	}
	return &User{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir}, nil
}

// CurrentUser is the account this process runs as. A uid without an
// entry in the user database (some containers) is named by its number.
func CurrentUser() (*User, error) {
	u, err := user.Current()
	if err != nil {
		return &User{Name: strconv.Itoa(os.Getuid()), UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Home: "/"}, nil
	}
	return LookupUser(u.Username)
}

// Owner is the account that owns path.
func Owner(path string) (*User, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("%s: no owner information", path)
	}
	u, err := user.LookupId(strconv.FormatUint(uint64(st.Uid), 10))
	if err != nil {
		return nil, fmt.Errorf("owner of %s (uid %d): %w", path, st.Uid, err)
	}
	return LookupUser(u.Username)
}

// Options say how to run the server.
type Options struct {
	BinDir  string
	DataDir string
	// SocketDir is a private directory (created by the caller, owned by
	// User) for the socket, the server's log and its pg_hba.conf and
	// pg_ident.conf: the restored ones may name users and addresses of the
	// source, or live outside the data directory (Debian).
	SocketDir string
	Port      int // 0: a free one
	// Settings are passed as -c name=value after walnut's own, in order.
	// Settings on the command line win over postgresql.conf and
	// postgresql.auto.conf, so nothing restored can turn them off.
	Settings [][2]string
	Env      []string // the server's whole environment
	// User runs the server when this process is root (PostgreSQL refuses
	// to run as root); nil runs it as this process.
	User *User
}

// Server is a running server.
type Server struct {
	opts    Options
	cmd     *exec.Cmd
	log     string
	done    chan struct{}
	waitErr error
	stop    sync.Once
}

// LogName is the server's log in SocketDir.
const LogName = "postgres.log"

// Start starts postgres and returns once the process runs; it may still
// fail during startup (see Done and WaitReady in the caller).
func Start(o Options) (*Server, error) {
	if o.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		o.Port = p
	}
	hba := filepath.Join(o.SocketDir, "pg_hba.conf")
	ident := filepath.Join(o.SocketDir, "pg_ident.conf")
	// Only the socket, in a directory only the server's user can enter:
	// trust lets the drill connect as any role the restored cluster has.
	if err := os.WriteFile(hba, []byte("# walnut restore drill: the socket directory is private\nlocal all all trust\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(ident, nil, 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(o.SocketDir, LogName)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	if o.User != nil && os.Geteuid() == 0 {
		for _, p := range []string{hba, ident, logPath} {
			if err := os.Chown(p, int(o.User.UID), int(o.User.GID)); err != nil {
				return nil, err
			}
		}
	}

	args := []string{"-D", o.DataDir, "-p", strconv.Itoa(o.Port)}
	for _, kv := range append(baseSettings(o.DataDir, o.SocketDir, hba, ident, filepath.Join(o.SocketDir, "postmaster.pid")), o.Settings...) {
		args = append(args, "-c", kv[0]+"="+kv[1])
	}
	cmd := exec.Command(filepath.Join(o.BinDir, "postgres"), args...)
	cmd.Dir = o.SocketDir
	cmd.Env = o.Env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group: Stop kills every process of the server,
		// restore_command's included, and a terminal's ^C reaches walnut,
		// which stops the server in order.
		Setpgid: true,
		// If walnut dies, the server stops at once (SIGQUIT: immediate
		// shutdown) instead of running on unattended.
		Pdeathsig: syscall.SIGQUIT,
	}
	if o.User != nil && os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: o.User.UID, Gid: o.User.GID}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	s := &Server{opts: o, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// baseSettings keep the server private and apart from any other server
// on the host: no TCP, its own socket, pid file and authentication files,
// its log on stderr.
func baseSettings(dataDir, socketDir, hba, ident, pidFile string) [][2]string {
	return [][2]string{
		// A restored postgresql.conf that names the source's data
		// directory would otherwise send the server there.
		{"data_directory", dataDir},
		{"listen_addresses", ""},
		{"unix_socket_directories", socketDir},
		{"unix_socket_permissions", "0700"},
		{"hba_file", hba},
		{"ident_file", ident},
		// Its own: a restored postgresql.conf may name the source's.
		{"external_pid_file", pidFile},
		{"logging_collector", "off"},
		{"log_destination", "stderr"},
		{"ssl", "off"},
		{"cluster_name", "walnut-drill"},
	}
}

// Port is the port the server's socket is named after.
func (s *Server) Port() int { return s.opts.Port }

// Done is closed once the server process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// ExitError says how the server process ended, once Done is closed.
func (s *Server) ExitError() error {
	<-s.done
	if s.waitErr == nil {
		return errors.New("server exited")
	}
	return fmt.Errorf("server exited: %w", s.waitErr)
}

// ConnString is a libpq keyword/value string reaching the server as role
// on database db, over its socket. Its sessions have no statement or
// lock timeout, whatever the restored cluster sets for the role or
// database: reading a large table must not be cut short.
func (s *Server) ConnString(role, db string) string {
	q := func(v string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'" }
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable connect_timeout=10 application_name=walnut-drill options='-c statement_timeout=0 -c lock_timeout=0'",
		q(s.opts.SocketDir), s.opts.Port, q(role), q(db))
}

// Stop shuts the server down (fast: sessions are cancelled, a shutdown
// checkpoint is written), escalates to an immediate shutdown after
// timeout and to SIGKILL after that, and makes sure no process of its
// group is left. It can be called more than once.
func (s *Server) Stop(timeout time.Duration) error {
	var err error
	s.stop.Do(func() { err = s.stopOnce(timeout) })
	return err
}

func (s *Server) stopOnce(timeout time.Duration) error {
	pgid := s.cmd.Process.Pid
	steps := []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, timeout}, {syscall.SIGQUIT, 10 * time.Second}, {syscall.SIGKILL, 10 * time.Second}}
	var err error
	for _, st := range steps {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Signal(st.sig)
			select {
			case <-s.done:
			case <-time.After(st.wait):
				err = fmt.Errorf("server did not stop on %s within %s", st.sig, st.wait)
				continue
			}
		}
		break
	}
	// Backends and a restore_command still running die with the group;
	// after a clean shutdown there are none and this finds no process.
	if kerr := syscall.Kill(-pgid, syscall.SIGKILL); kerr != nil && !errors.Is(kerr, syscall.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", pgid, kerr)
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(10 * time.Second):
		if err == nil {
			err = errors.New("server process did not exit")
		}
		return err
	}
}

// LogTail returns the last n lines of the server's log.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FreePort returns a TCP port nobody listens on now. The server listens
// on no TCP port, but names its socket after one, and a port unused on
// the host keeps clear of other servers' sockets and lock files.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
