package testserver

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// FakeGCS is a running fake-gcs-server.
type FakeGCS struct {
	*Process
	// URL is its base URL, as STORAGE_EMULATOR_HOST takes it.
	URL string
}

// StartFakeGCS starts fake-gcs-server (go install
// github.com/fsouza/fake-gcs-server) over plain HTTP on a free port, its
// objects in a temp dir. A missing binary is reported through
// testpg.Require as "fake-gcs-server".
func StartFakeGCS(t testing.TB) *FakeGCS {
	t.Helper()
	bin, err := LookPath("fake-gcs-server")
	testpg.Require(t, "fake-gcs-server", err)
	port := strconv.Itoa(FreePort(t))
	addr := "127.0.0.1:" + port
	dir := t.TempDir()
	cmd := exec.Command(bin,
		"-scheme", "http", "-host", "127.0.0.1", "-port", port,
		"-backend", "filesystem", "-filesystem-root", dir,
		// Resumable uploads continue at the Location it returns, and XML
		// reads go to the public host: both must be this server.
		"-external-url", "http://"+addr, "-public-host", addr,
		"-log-level", "warn")
	cmd.Dir = dir
	p := Start(t, "fake-gcs-server", addr, cmd, time.Minute)
	return &FakeGCS{Process: p, URL: "http://" + addr}
}

// CreateBucket creates bucket name through the JSON API.
func (f *FakeGCS) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL+"/storage/v1/b?project=walnut-test",
		strings.NewReader(`{"name":`+strconv.Quote(name)+`}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("create bucket %s in fake-gcs-server: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		t.Fatalf("create bucket %s in fake-gcs-server: %s: %s", name, resp.Status, body)
	}
}
