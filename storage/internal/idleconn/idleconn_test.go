package idleconn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/storage/internal/idleconn"
)

const idle = 300 * time.Millisecond

func client() *http.Client {
	return &http.Client{Transport: idleconn.Transport(idle, time.Second)}
}

// A download that stops moving is cut, however long the whole transfer
// was allowed to take.
func TestStalledBodyIsCut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write(bytes.Repeat([]byte("x"), 100))
		w.(http.Flusher).Flush()
		<-release
	}))
	defer srv.Close()
	// Before Close, which waits for the handler.
	defer close(release)
	resp, err := client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil {
		t.Fatalf("read %d bytes of a stalled body without error", n)
	}
	if d := time.Since(start); d > 10*idle {
		t.Errorf("stalled body cut after %s, want about %s", d, idle)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("stalled body error = %v, want a timeout", err)
	}
}

// A server that never answers is cut too.
func TestSilentServerIsCut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Accept connections and hold them, saying nothing.
	held := make(chan net.Conn, 16)
	defer func() {
		l.Close()
		for len(held) > 0 {
			(<-held).Close()
		}
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.Addr().String()+"/", nil)
	resp, err := client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("request to a silent server succeeded")
	}
	if d := time.Since(start); d > 10*idle {
		t.Errorf("silent server cut after %s, want about %s", d, idle)
	}
}

// A slow transfer that keeps moving is not cut, in either direction, even
// when the whole takes many times the idle timeout.
func TestSlowProgressIsKept(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for range 8 {
			w.Write([]byte("y"))
			w.(http.Flusher).Flush()
			time.Sleep(idle / 3)
		}
		w.Write([]byte(strings.Repeat("z", int(got))))
	}))
	defer srv.Close()
	body := &slowReader{n: 8, every: idle / 3}
	resp, err := client().Post(srv.URL, "application/octet-stream", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("slow but moving transfer cut: %v", err)
	}
	if want := "yyyyyyyy" + strings.Repeat("z", 8); string(b) != want {
		t.Errorf("body = %q, want %q", b, want)
	}
}

// slowReader yields one byte every so often.
type slowReader struct {
	n     int
	every time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.every)
	s.n--
	p[0] = 'u'
	return 1, nil
}
