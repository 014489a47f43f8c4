package swift

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testserver"
	"github.com/walnut-pg/walnut/storage"
)

// stallProxy forwards TCP connections to target until told to stall; from
// then on it passes nothing in either direction and closes nothing, as a
// dead link or a hung server would.
type stallProxy struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
	release chan struct{}
	wg      sync.WaitGroup
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target, release: make(chan struct{})}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		close(p.release)
		p.wg.Wait()
	})
	return p
}

func (p *stallProxy) Addr() string { return p.ln.Addr().String() }

func (p *stallProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() {
			defer c.Close()
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{}, 2)
			go func() { p.pipe(u, c); done <- struct{}{} }()
			go func() { p.pipe(c, u); done <- struct{}{} }()
			select {
			case <-done:
			case <-p.release:
			}
		})
	}
}

func (p *stallProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.stalled.Load() {
			<-p.release
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestStalledConnectionTimesOut: a server that stops answering, before or
// in the middle of a response or an upload, costs a timeout, never a hang,
// and the failure is one the retry decorator tries again.
func TestStalledConnectionTimesOut(t *testing.T) {
	srv := testserver.Swift(t)
	srv.CreateContainer(t, "walnut")
	proxy := newStallProxy(t, srv.Addr)
	u, _ := url.Parse("swift://walnut/stall")
	s, err := open(u, func(k string) string {
		return map[string]string{
			"SWIFT_AUTHURL":  "http://" + proxy.Addr() + "/auth/v1.0",
			"SWIFT_USER":     srv.User,
			"SWIFT_PASSWORD": srv.Key,
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const timeout = 2 * time.Second
	s.conn.ConnectTimeout, s.conn.Timeout = timeout, timeout

	data := bytes.Repeat([]byte("walnut"), 16<<20/6)
	if err := s.Put(t.Context(), "obj", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put through the proxy before it stalls: %v", err)
	}
	rc, err := s.Get(t.Context(), "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}

	within := func(what string, fn func() error) {
		t.Helper()
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- fn() }()
		select {
		case err := <-done:
			switch {
			case err == nil:
				t.Errorf("%s through a stalled connection succeeded", what)
			case storage.IsPermanent(err) || errors.Is(err, storage.ErrNotFound):
				t.Errorf("%s through a stalled connection = %v, want an error worth retrying", what, err)
			case strings.Contains(err.Error(), srv.Key):
				t.Errorf("%s error leaks the password: %v", what, err)
			}
			t.Logf("%s gave up after %s: %v", what, time.Since(start).Round(time.Millisecond), err)
		case <-time.After(30 * timeout):
			t.Fatalf("%s through a stalled connection still hangs after %s", what, 30*timeout)
		}
	}
	// The link dies in the middle of an upload.
	within("Put", func() error {
		r := &stallAfter{r: bytes.NewReader(data), n: 4 << 20, proxy: proxy}
		return s.Put(t.Context(), "obj2", r, int64(len(data)))
	})
	proxy.stalled.Store(true)
	within("reading a body", func() error { _, err := io.Copy(io.Discard, rc); return err })
	within("Stat", func() error { _, err := s.Stat(t.Context(), "obj"); return err })
	within("Delete", func() error { return s.Delete(t.Context(), "obj") })
	// A log-in that never gets an answer.
	s.conn.UnAuthenticate()
	within("log-in", func() error {
		return s.List(t.Context(), "", func(storage.ObjectInfo) error { return nil })
	})

	// Seen past the proxy, the interrupted upload left nothing.
	direct, err := open(u, func(k string) string {
		return map[string]string{"SWIFT_AUTHURL": srv.AuthURL, "SWIFT_USER": srv.User, "SWIFT_PASSWORD": srv.Key}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	var keys []string
	if err := direct.List(t.Context(), "", func(info storage.ObjectInfo) error {
		keys = append(keys, info.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "obj" {
		t.Errorf("after the stalled Put the store holds %q, want only obj", keys)
	}
}

// stallAfter stalls the proxy once n bytes have been read from r.
type stallAfter struct {
	r     io.Reader
	n     int
	proxy *stallProxy
}

func (s *stallAfter) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if s.n -= n; s.n <= 0 {
		s.proxy.stalled.Store(true)
	}
	return n, err
}
