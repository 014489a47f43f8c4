package testserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// SwiftServer is an OpenStack Swift all-in-one built from Debian's
// packages: a proxy with tempauth in front of one account, one container
// and one object server, each with one device in a temp dir, and a
// memcached for tempauth's tokens.
type SwiftServer struct {
	AuthURL string // tempauth's v1 endpoint
	// User and Key are an administrator of account AUTH_test.
	User, Key string
	// NoAccessUser and NoAccessKey are a user of the same account with no
	// rights on its containers: every request gets 403.
	NoAccessUser, NoAccessKey string
	Addr                      string // the proxy's host:port
}

// Swift's daemons and their share of the all-in-one.
var swiftRings = []struct{ ring, server string }{
	{"account", "swift-account-server"},
	{"container", "swift-container-server"},
	{"object", "swift-object-server"},
}

// swiftConf is where every Swift daemon reads the cluster's hash salt,
// storage policies and constraints (max_file_size); it has no setting to
// look elsewhere. The Debian package "swift" installs it.
const swiftConf = "/etc/swift/swift.conf"

// Swift starts an all-in-one Swift on free ports on 127.0.0.1 and stops it
// when the test ends. Each daemon runs as one process (workers = 0: no
// forked workers, so no switch to the user "swift" either) as the test's
// user, root included; Swift's own setsid fails for a process-group
// leader, so each stays in the group Start kills. Swift's Python daemons
// take a few seconds to start.
func Swift(t testing.TB) *SwiftServer {
	t.Helper()
	bins := map[string]string{}
	for _, name := range []string{"swift-proxy-server", "swift-account-server", "swift-container-server", "swift-object-server", "memcached"} {
		p, err := LookPath(name)
		if err != nil {
			testpg.Require(t, "swift", fmt.Errorf("%w (install the Debian packages swift-proxy, swift-account, swift-container, swift-object and memcached)", err))
		}
		bins[name] = p
	}
	if _, err := os.Stat(swiftConf); err != nil {
		testpg.Require(t, "swift", fmt.Errorf("%w (installed by the Debian package swift)", err))
	}
	python, err := interpreter(bins["swift-proxy-server"])
	if err != nil {
		testpg.Require(t, "swift", err)
	}

	dir := t.TempDir()
	devices := filepath.Join(dir, "devices")
	if err := os.MkdirAll(filepath.Join(devices, "d1"), 0o755); err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{}
	for _, r := range swiftRings {
		ports[r.ring] = FreePort(t)
	}
	proxyPort, memcachePort := FreePort(t), FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", proxyPort)
	proxy := filepath.Join(dir, "proxy-server.conf")
	if err := os.WriteFile(proxy, []byte(proxyConf(proxyPort, memcachePort, dir)), 0o644); err != nil {
		t.Fatal(err)
	}

	// The storage servers need no rings to serve, so they start while the
	// rings are built; the proxy needs the rings.
	var wg sync.WaitGroup
	errs := make(chan error, len(swiftRings)+2)
	for _, r := range swiftRings {
		conf := filepath.Join(dir, r.ring+"-server.conf")
		if err := os.WriteFile(conf, []byte(storageServerConf(r.ring, ports[r.ring], devices, dir)), 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			cmd := exec.Command(bins[r.server], conf, "-v")
			cmd.Dir = dir
			_, err := StartErr(t, r.server, fmt.Sprintf("127.0.0.1:%d", ports[r.ring]), cmd, 60*time.Second)
			errs <- err
		})
	}
	wg.Go(func() {
		args := []string{"-l", "127.0.0.1", "-p", fmt.Sprint(memcachePort), "-U", "0"}
		if os.Geteuid() == 0 {
			// memcached refuses to run as root unless told whom to become.
			args = append(args, "-u", "nobody")
		}
		_, err := StartErr(t, "memcached", fmt.Sprintf("127.0.0.1:%d", memcachePort), exec.Command(bins["memcached"], args...), 20*time.Second)
		errs <- err
	})
	wg.Go(func() {
		if err := buildRings(t.Context(), python, dir, ports); err != nil {
			errs <- err
			return
		}
		cmd := exec.Command(bins["swift-proxy-server"], proxy, "-v")
		cmd.Dir = dir
		_, err := StartErr(t, "swift-proxy-server", addr, cmd, 60*time.Second)
		errs <- err
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("swift all-in-one: %v", err)
		}
	}

	s := &SwiftServer{
		AuthURL:      "http://" + addr + "/auth/v1.0",
		User:         "test:tester",
		Key:          "testing",
		NoAccessUser: "test:nobody",
		NoAccessKey:  "nothing",
		Addr:         addr,
	}
	if err := s.waitReady(t.Context(), 60*time.Second); err != nil {
		t.Fatalf("swift all-in-one on %s: %v", addr, err)
	}
	return s
}

// interpreter returns the Python that runs script, from its #! line: the
// one Swift's modules are installed for.
func interpreter(script string) (string, error) {
	f, err := os.Open(script)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if !strings.HasPrefix(line, "#!") || len(fields) == 0 {
		return "", fmt.Errorf("%s has no #! line naming its Python", script)
	}
	return fields[0], nil
}

// ringScript builds each ring named on its command line ("name:port") with
// one partition, one replica and one device, d1 on 127.0.0.1:port. It uses
// the RingBuilder that swift-ring-builder wraps: nine runs of that command
// (create, add, rebalance per ring) take 10 to 20 seconds of Python start-up
// on a loaded 2-core machine, one run of this about one.
const ringScript = `
import sys
from swift.common.ring import RingBuilder
swift_dir = sys.argv[1]
for spec in sys.argv[2:]:
    name, port = spec.split(':')
    b = RingBuilder(0, 1, 0)
    b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1',
               'port': int(port), 'device': 'd1', 'weight': 1})
    b.rebalance()
    b.get_ring().save('%s/%s.ring.gz' % (swift_dir, name))
`

func buildRings(ctx context.Context, python, dir string, ports map[string]int) error {
	args := []string{"-c", ringScript, dir}
	for _, r := range swiftRings {
		args = append(args, fmt.Sprintf("%s:%d", r.ring, ports[r.ring]))
	}
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build swift rings with %s: %w\n%s", python, err, out)
	}
	return nil
}

func storageServerConf(ring string, port int, devices, swiftDir string) string {
	extra := ""
	if ring == "object" {
		// Listings must show an object as soon as its PUT returns: the
		// test rig runs no object-updater to apply late container updates.
		extra = "container_update_timeout = 30\nconn_timeout = 5\nnode_timeout = 30\n"
	}
	return fmt.Sprintf(`[DEFAULT]
bind_ip = 127.0.0.1
bind_port = %d
workers = 0
devices = %s
mount_check = false
disable_fallocate = true
fallocate_reserve = 0
swift_dir = %s
log_level = INFO

[pipeline:main]
pipeline = %s-server

[app:%s-server]
use = egg:swift#%s
%s`, port, devices, swiftDir, ring, ring, ring, extra)
}

func proxyConf(port, memcachePort int, swiftDir string) string {
	return fmt.Sprintf(`[DEFAULT]
bind_ip = 127.0.0.1
bind_port = %d
workers = 0
swift_dir = %s
log_level = INFO

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
# Swift's defaults (0.5s to connect to a storage server) are for a cluster
# of idle machines, not for Python daemons on a busy 2-core test box.
conn_timeout = 5
node_timeout = 30

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
user_test_nobody = nothing

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:%d

[filter:healthcheck]
use = egg:swift#healthcheck
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
`, port, swiftDir, memcachePort)
}

// waitReady waits until the proxy answers its health check and tempauth
// hands out a token that the account server accepts.
func (s *SwiftServer) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = s.ping(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *SwiftServer) ping(ctx context.Context) error {
	if _, err := s.do(ctx, http.MethodGet, "http://"+s.Addr+"/healthcheck", nil); err != nil {
		return err
	}
	url, token, err := s.auth(ctx, s.User, s.Key)
	if err != nil {
		return err
	}
	_, err = s.do(ctx, http.MethodHead, url, http.Header{"X-Auth-Token": {token}})
	return err
}

// auth returns the storage URL and a token for user.
func (s *SwiftServer) auth(ctx context.Context, user, key string) (string, string, error) {
	h, err := s.do(ctx, http.MethodGet, s.AuthURL, http.Header{"X-Auth-User": {user}, "X-Auth-Key": {key}})
	if err != nil {
		return "", "", err
	}
	url, token := h.Get("X-Storage-Url"), h.Get("X-Auth-Token")
	if url == "" || token == "" {
		return "", "", errors.New("tempauth answered without a storage URL or token")
	}
	return url, token, nil
}

func (s *SwiftServer) do(ctx context.Context, method, url string, h http.Header) (http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return resp.Header, nil
}

// CreateContainer creates container in the administrator's account.
func (s *SwiftServer) CreateContainer(t testing.TB, container string) {
	t.Helper()
	url, token, err := s.auth(t.Context(), s.User, s.Key)
	if err != nil {
		t.Fatalf("swift auth: %v", err)
	}
	// The proxy creates the account on its first use, and until the
	// account servers have it a container PUT can answer 404: a CI run met
	// that once, on a server that had just started. Give it a few seconds.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.do(t.Context(), http.MethodPut, url+"/"+container, http.Header{"X-Auth-Token": {token}})
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "404") || time.Now().After(deadline) {
			t.Fatalf("create swift container %s: %v", container, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Env returns the WAL-E style variables that point walnut at this server
// as its administrator.
func (s *SwiftServer) Env() []string {
	return []string{
		"SWIFT_AUTHURL=" + s.AuthURL,
		"SWIFT_USER=" + s.User,
		"SWIFT_PASSWORD=" + s.Key,
		"SWIFT_AUTH_VERSION=1",
	}
}
