package all

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/internal/testserver"
	"github.com/walnut-pg/walnut/storage"
)

func noEnv(string) string { return "" }

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		prefix  string
		wantErr string // "" means Open must succeed
	}{
		{"file://" + dir, ""},
		{"file://localhost" + dir, ""},
		{"FILE://" + dir + "/new/sub", ""},
		{"file://" + dir + "/with%20space", ""},
		{"mem://", `unknown storage scheme "mem" in prefix "mem:": want file:///absolute/path, s3://, azure:// (wabs://), swift:// or gs://`},
		{"mem://anything", `unknown storage scheme "mem"`},
		{"file://relative/path", `names host "relative"; a directory needs an absolute path after three slashes, such as file:///relative/path`},
		{"file:relative/path", "file URL needs an absolute path: file:///relative/path"},
		{"file://", "needs an absolute path"},
		{"file://user:hunter2@localhost/x", "cannot carry a user name"},
		{"file:///x?y=1", "query or fragment"},
		{"file:///x#frag", "query or fragment"},
		{"s3:///path", `storage prefix "s3:///path": s3 prefix has no bucket`},
		{"S3://bucket:9000/path", `names bucket "bucket:9000" with a port; set the server in AWS_ENDPOINT_URL`},
		{"azure://container/path", `storage prefix "azure://container/path": azure credentials missing: set AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY`},
		{"wabs://container/path", `storage prefix "wabs://container/path": azure credentials missing`},
		{"azure:///path", "azure prefix needs a container: azure://container/path"},
		{"swift://container/path", `storage prefix "swift://container/path": swift: set SWIFT_AUTHURL (or OS_AUTH_URL)`},
		{"gs:///path", "gs prefix needs a bucket: gs://bucket/path"},
		{"ftp://host/x", `unknown storage scheme "ftp" in prefix "ftp://host/x": want file:///absolute/path, s3://, azure:// (wabs://), swift:// or gs://`},
		{"gcs://bucket", `unknown storage scheme "gcs"`},
		{"/var/lib/walnut", `storage prefix "/var/lib/walnut" has no scheme`},
		{"", "has no scheme"},
		{"s3://bucket/%zz", "is not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			s, err := Open(t.Context(), tt.prefix, noEnv, nil)
			if tt.wantErr != "" {
				if err == nil {
					s.Close()
					t.Fatalf("Open succeeded, want error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %q, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if err := s.Put(t.Context(), "walnut.json", strings.NewReader("{}"), 2); err != nil {
				t.Fatalf("Put: %v", err)
			}
			if _, err := s.Stat(t.Context(), "walnut.json"); err != nil {
				t.Errorf("Stat: %v", err)
			}
			if _, err := s.Stat(t.Context(), "missing"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Stat of a missing key: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestOpenFileWritesWhereTheURLSays(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), "file://"+dir+"/my%20archive", noEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(t.Context(), "wal/x", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "my archive", "wal", "x")); err != nil {
		t.Errorf("object not at the decoded path: %v", err)
	}
}

func TestSecretsStayOutOfErrors(t *testing.T) {
	for _, prefix := range []string{
		"s3://AKIAXXX:hunter2@bucket/path?sig=hunter2",
		"ftp://me:hunter2@host/x",
		"file://me:hunter2@localhost/x",
		"s3://me:hunter2@bucket/%zz",
		"azure://container/path?sv=2020&sig=hunter2",
		"wabs://me:hunter2@container/path",
		"gs://bucket/path?sig=hunter2",
		"gs://me:hunter2@bucket/path",
		"swift://me:hunter2@container/path",
		"swift://container/path?temp_url_sig=hunter2",
	} {
		_, err := Open(t.Context(), prefix, noEnv, nil)
		if err == nil {
			t.Errorf("Open(%q) succeeded", prefix)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error leaks the secret: %v", prefix, err)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"file:///var/lib/walnut", "file:///var/lib/walnut"},
		{"s3://bucket/path", "s3://bucket/path"},
		{"s3://AKIA:secret@bucket/path", "s3://bucket/path"},
		{"azure://container/path?sv=2020&sig=abc", "azure://container/path?sig=REDACTED&sv=REDACTED"},
		{"swift://c/p#token", "swift://c/p"},
		{"s3://u:secret@bucket/%zz", "s3://(unparsable, redacted)"},
		{"::secret", "(unparsable, redacted)"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// roundTrip checks that a store opened by Open works and is wrapped in the
// retry decorator.
func roundTrip(t *testing.T, prefix string, env map[string]string) {
	t.Helper()
	s, err := Open(t.Context(), prefix, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatalf("Open(%q): %v", prefix, err)
	}
	defer s.Close()
	if got, want := typeName(s), typeName(storage.WithRetry(nil, storage.RetryPolicy{})); got != want {
		t.Errorf("Open(%q) returned a %s, want the retry decorator %s", prefix, got, want)
	}
	if err := s.Put(t.Context(), "walnut.json", strings.NewReader("{}"), 2); err != nil {
		t.Fatalf("Put: %v", err)
	}
	rc, err := s.Get(t.Context(), "walnut.json")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "{}" {
		t.Errorf("Get = %q", b)
	}
	if _, err := s.Stat(t.Context(), "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of a missing key: %v, want ErrNotFound", err)
	}
}

func typeName(v any) string { return strings.TrimPrefix(fmt.Sprintf("%T", v), "*") }

func TestOpenAzure(t *testing.T) {
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, "walnut")
	env := map[string]string{}
	for _, kv := range az.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	roundTrip(t, "azure://walnut/archive", env)
	// WAL-E's scheme and names reach the same blobs.
	wale := map[string]string{
		"WABS_ACCOUNT_NAME":      testserver.AzuriteAccount,
		"WABS_ACCESS_KEY":        testserver.AzuriteKey,
		"AZURE_STORAGE_ENDPOINT": az.Endpoint,
	}
	s, err := Open(t.Context(), "wabs://walnut/archive/", func(k string) string { return wale[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Stat(t.Context(), "walnut.json"); err != nil {
		t.Errorf("wabs:// with WABS_* does not see what azure:// stored: %v", err)
	}
}

func TestOpenGCS(t *testing.T) {
	f := testserver.StartFakeGCS(t)
	f.CreateBucket(t, "walnut")
	roundTrip(t, "gs://walnut/archive", map[string]string{"STORAGE_EMULATOR_HOST": f.URL})
}
