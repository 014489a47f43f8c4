package pgserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walnut-pg/walnut/internal/testpg"
)

// A server started on a stopped cluster accepts connections on its
// private socket only; Stop leaves no process of its group behind.
func TestStartStop(t *testing.T) {
	c := testpg.New(t, testpg.Options{})
	c.Stop(t)
	major, err := Version(c.BinDir)
	if err != nil {
		t.Fatal(err)
	}
	if dir, err := BinDir(major, c.BinDir); err != nil || dir != c.BinDir {
		t.Fatalf("BinDir(%d, %s) = %s, %v", major, c.BinDir, dir, err)
	}
	if _, err := BinDir(major+1, c.BinDir); err == nil || !strings.Contains(err.Error(), "the backup needs") {
		t.Fatalf("BinDir of another version: %v", err)
	}
	// A restored postgresql.conf may name the source's data directory
	// and pid file; the server must use its own.
	conf, err := os.OpenFile(filepath.Join(c.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conf, "data_directory = '/nonexistent/source'\nexternal_pid_file = '/nonexistent/source.pid'\n")
	conf.Close()
	sock := testpg.SharedTempDir(t)
	var u *User
	if os.Geteuid() == 0 {
		if u, err = LookupUser(testpg.ServerUser); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := Start(Options{BinDir: c.BinDir, DataDir: c.DataDir, SocketDir: sock, User: u, Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(time.Minute) })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var conn *pgx.Conn
	for conn == nil {
		if conn, err = pgx.Connect(ctx, srv.ConnString("postgres", "postgres")); err != nil {
			select {
			case <-srv.Done():
				t.Fatalf("server exited: %v\n%s", srv.ExitError(), srv.LogTail(20))
			case <-ctx.Done():
				t.Fatalf("no connection: %v\n%s", err, srv.LogTail(20))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	var listen, pidFile string
	if err := conn.QueryRow(ctx, "SELECT current_setting('listen_addresses'), current_setting('external_pid_file')").Scan(&listen, &pidFile); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if listen != "" || filepath.Dir(pidFile) != sock {
		t.Errorf("listen_addresses %q, external_pid_file %q: want no TCP and a pid file in %s", listen, pidFile, sock)
	}
	pid := srv.cmd.Process.Pid
	if err := srv.Stop(time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-pid, 0); err != syscall.ESRCH {
		t.Errorf("process group %d still has processes after Stop (%v)", pid, err)
	}
	if !strings.Contains(srv.LogTail(5), "database system is shut down") {
		t.Errorf("not a clean shutdown:\n%s", srv.LogTail(5))
	}
}

// A server that cannot start ends at once; Stop then has nothing to do.
func TestStartFails(t *testing.T) {
	bin, err := testpg.BinDir()
	testpg.Require(t, "postgres", err)
	sock := testpg.SharedTempDir(t)
	var u *User
	if os.Geteuid() == 0 {
		if u, err = LookupUser(testpg.ServerUser); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := Start(Options{BinDir: bin, DataDir: filepath.Join(sock, "nonexistent"), SocketDir: sock, User: u})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.Done():
	case <-time.After(time.Minute):
		t.Fatal("a server without a data directory is still running")
	}
	if err := srv.Stop(time.Minute); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(srv.LogTail(5), "nonexistent") {
		t.Errorf("log does not say why:\n%s", srv.LogTail(5))
	}
}
