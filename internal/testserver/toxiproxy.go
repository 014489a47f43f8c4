package testserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// Toxiproxy is a running toxiproxy server: a TCP proxy whose faults
// (resets, stalls, latency, bandwidth limits) a test switches on and off
// through its HTTP API.
type Toxiproxy struct {
	*Process
	API string // http://127.0.0.1:port
}

// lookToxiproxy finds toxiproxy-server; `go install
// github.com/Shopify/toxiproxy/v2/cmd/server` names it plain "server",
// which is taken from the Go bin directory only if it says it is
// toxiproxy.
func lookToxiproxy() (string, error) {
	p, err := LookPath("toxiproxy-server")
	if err == nil {
		return p, nil
	}
	if s, serr := LookPath("server"); serr == nil {
		if out, verr := exec.Command(s, "-version").CombinedOutput(); verr == nil && strings.Contains(string(out), "toxiproxy") {
			return s, nil
		}
	}
	return "", err
}

// StartToxiproxy starts toxiproxy-server on 127.0.0.1 and stops it when
// the test ends.
func StartToxiproxy(t testing.TB) *Toxiproxy {
	t.Helper()
	bin, err := lookToxiproxy()
	testpg.Require(t, "toxiproxy", err)
	port := strconv.Itoa(FreePort(t))
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", port)
	cmd.Dir = t.TempDir()
	p := Start(t, "toxiproxy", "127.0.0.1:"+port, cmd, 30*time.Second)
	return &Toxiproxy{Process: p, API: "http://127.0.0.1:" + port}
}

// call sends one API request and fails the test unless it answers 2xx.
func (tp *Toxiproxy) call(t testing.TB, method, path string, body any) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, tp.API+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("toxiproxy %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("toxiproxy %s %s: %v", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("toxiproxy %s %s: HTTP %s: %s", method, path, resp.Status, out)
	}
	return out
}

// Proxy is one listening address of toxiproxy that forwards to upstream.
type Proxy struct {
	tp     *Toxiproxy
	Name   string
	Listen string // 127.0.0.1:port
}

// URL is the proxy's address as an http:// URL.
func (p *Proxy) URL() string { return "http://" + p.Listen }

// Proxy creates a proxy named name on a free port in front of upstream
// (host:port).
func (tp *Toxiproxy) Proxy(t testing.TB, name, upstream string) *Proxy {
	t.Helper()
	listen := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	tp.call(t, http.MethodPost, "/proxies", map[string]any{
		"name": name, "listen": listen, "upstream": upstream, "enabled": true,
	})
	return &Proxy{tp: tp, Name: name, Listen: listen}
}

// Toxic is one fault. Type is toxiproxy's: latency, bandwidth, timeout,
// reset_peer, limit_data, slow_close, slicer. Stream is "upstream"
// (client to server) or "downstream"; Toxicity is the share of
// connections it applies to (0 means 1).
type Toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float64        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// AddToxic switches a fault on; it applies to new data on existing
// connections as well as to new connections.
func (p *Proxy) AddToxic(t testing.TB, x Toxic) {
	t.Helper()
	if x.Toxicity == 0 {
		x.Toxicity = 1
	}
	if x.Stream == "" {
		x.Stream = "downstream"
	}
	p.tp.call(t, http.MethodPost, "/proxies/"+p.Name+"/toxics", x)
}

// RemoveToxic switches a fault off.
func (p *Proxy) RemoveToxic(t testing.TB, name string) {
	t.Helper()
	p.tp.call(t, http.MethodDelete, "/proxies/"+p.Name+"/toxics/"+name, nil)
}

// SetEnabled opens or closes the proxy; closing it drops every
// connection through it.
func (p *Proxy) SetEnabled(t testing.TB, enabled bool) {
	t.Helper()
	p.tp.call(t, http.MethodPost, "/proxies/"+p.Name, map[string]any{"enabled": enabled})
}

// String names the proxy in test logs.
func (p *Proxy) String() string { return fmt.Sprintf("toxiproxy %s (%s)", p.Name, p.Listen) }
