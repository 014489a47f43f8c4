package testserver

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// MinIOKMSKey is the name of the one KMS key the test MinIO holds, for
// SSE-KMS (WALNUT_S3_SSE=aws:kms, WALNUT_S3_SSE_KMS_ID=MinIOKMSKey); it
// also makes SSE-S3 (AES256) work.
const MinIOKMSKey = "walnut-test-key"

// MinIOServer is a running MinIO with one root user.
type MinIOServer struct {
	*Process
	Endpoint string // http://127.0.0.1:port
	User     string
	// Password is distinctive per server, so a test can grep walnut's
	// output for it.
	Password string
	// CAFile is the PEM certificate of the CA that signed the server's
	// certificate, for a server started by MinIOTLS.
	CAFile string
}

// MinIO starts a single-drive MinIO server on 127.0.0.1 with a fresh data
// directory, and stops it when the test ends. Start one per test
// function: it takes a few seconds.
func MinIO(t testing.TB) *MinIOServer {
	t.Helper()
	return startMinIO(t, false)
}

// MinIOTLS is MinIO serving https, with a certificate for 127.0.0.1 from a
// CA of its own, whose certificate is in the PEM file CAFile.
func MinIOTLS(t testing.TB) *MinIOServer {
	t.Helper()
	return startMinIO(t, true)
}

func startMinIO(t testing.TB, secure bool) *MinIOServer {
	t.Helper()
	bin, err := LookPath("minio")
	testpg.Require(t, "minio", err)
	dir := t.TempDir()
	port, console := FreePort(t), FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	m := &MinIOServer{
		Endpoint: "http://" + addr,
		User:     "walnut-root",
		Password: "walnut-minio-" + randomHex(12),
	}
	args := []string{"server", filepath.Join(dir, "data"),
		"--address", addr, "--console-address", "127.0.0.1:" + strconv.Itoa(console), "--quiet"}
	if secure {
		certs := filepath.Join(dir, "certs")
		m.CAFile = writeTestCerts(t, certs)
		m.Endpoint = "https://" + addr
		args = append(args, "--certs-dir", certs)
	}
	kmsKey := make([]byte, 32)
	rand.Read(kmsKey)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.User,
		"MINIO_ROOT_PASSWORD="+m.Password,
		"MINIO_KMS_SECRET_KEY="+MinIOKMSKey+":"+base64.StdEncoding.EncodeToString(kmsKey),
		// The console would listen on every interface.
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=on",
		"HOME="+dir,
	)
	m.Process = Start(t, "minio", addr, cmd, time.Minute)
	m.waitLive(t)
	return m
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// waitLive waits for MinIO's liveness endpoint: it listens before it can
// serve requests.
func (m *MinIOServer) waitLive(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := m.httpClient(t).Get(m.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("HTTP %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("minio at %s not ready after a minute: %v", m.Endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Client returns a client with root rights, for a test to set up buckets
// and look behind walnut's back.
func (m *MinIOServer) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(m.Addr, &minio.Options{
		Creds:     credentials.NewStaticV4(m.User, m.Password, ""),
		Region:    "us-east-1",
		Secure:    m.CAFile != "",
		Transport: m.httpClient(t).Transport,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// CreateBucket makes a bucket.
func (m *MinIOServer) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// httpClient trusts the server's CA.
func (m *MinIOServer) httpClient(t testing.TB) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if m.CAFile != "" {
		pem, err := os.ReadFile(m.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Env returns the settings walnut needs to reach this server as root,
// through endpoint if it is not empty (a proxy in front of it), else
// directly.
func (m *MinIOServer) Env(endpoint string) []string {
	if endpoint == "" {
		endpoint = m.Endpoint
	}
	env := []string{
		"AWS_ENDPOINT_URL=" + endpoint,
		"AWS_ACCESS_KEY_ID=" + m.User,
		"AWS_SECRET_ACCESS_KEY=" + m.Password,
		"AWS_REGION=us-east-1",
		"WALNUT_S3_FORCE_PATH_STYLE=true",
	}
	if m.CAFile != "" {
		env = append(env, "WALNUT_S3_CA_CERT_FILE="+m.CAFile)
	}
	return env
}

// Getenv is Env as a lookup function, for opening a store in-process.
func (m *MinIOServer) Getenv(endpoint string, extra ...string) func(string) string {
	vars := map[string]string{}
	for _, kv := range append(m.Env(endpoint), extra...) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return func(name string) string { return vars[name] }
}
