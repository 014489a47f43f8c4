// Package all opens a storage.Store from a prefix URL; it is the one place
// that knows every backend.
package all

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/azure"
	"github.com/walnut-pg/walnut/storage/gcs"
	"github.com/walnut-pg/walnut/storage/local"
	"github.com/walnut-pg/walnut/storage/s3"
	"github.com/walnut-pg/walnut/storage/swift"
)

// Open returns the store for prefix, such as file:///var/lib/walnut or
// s3://bucket/path. getenv supplies the backends' settings and credentials
// (AWS_*, AZURE_STORAGE_*, GOOGLE_APPLICATION_CREDENTIALS, ...): swift://
// reads SWIFT_* or OS_*. Retries are logged to log; nil discards them.
func Open(ctx context.Context, prefix string, getenv func(string) string, log *slog.Logger) (storage.Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(prefix)
	if err != nil {
		// url.Error repeats the whole prefix, secrets included.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("storage prefix %q is not a URL: %w", Redact(prefix), err)
	}
	switch u.Scheme {
	case "file":
		root, err := fileRoot(u)
		if err != nil {
			return nil, fmt.Errorf("storage prefix %q: %w", Redact(prefix), err)
		}
		s, err := local.New(root)
		if err != nil {
			return nil, err
		}
		return withRetry(s, log), nil
	case "s3":
		s, err := s3.Open(ctx, u, getenv, log)
		if err != nil {
			return nil, fmt.Errorf("storage prefix %q: %w", Redact(prefix), err)
		}
		return withRetry(s, log), nil
	case "swift":
		s, err := swift.Open(ctx, u, getenv)
		if err != nil {
			return nil, fmt.Errorf("storage prefix %q: %w", Redact(prefix), err)
		}
		return withRetry(s, log), nil
	case "azure", "wabs":
		s, err := azure.Open(ctx, u, getenv)
		if err != nil {
			return nil, fmt.Errorf("storage prefix %q: %w", Redact(prefix), err)
		}
		return withRetry(s, log), nil
	case "gs":
		s, err := gcs.Open(ctx, u, getenv)
		if err != nil {
			return nil, fmt.Errorf("storage prefix %q: %w", Redact(prefix), err)
		}
		return withRetry(s, log), nil
	case "":
		return nil, fmt.Errorf("storage prefix %q has no scheme: want %s", Redact(prefix), supported)
	}
	return nil, fmt.Errorf("unknown storage scheme %q in prefix %q: want %s", u.Scheme, Redact(prefix), supported)
}

// supported names the schemes Open accepts. There is no mem:// on purpose:
// a store that dies with its process would let wal-push report "archived"
// for WAL that the next process cannot find. Tests use storage/mem
// directly.
const supported = "file:///absolute/path, s3://, azure:// (wabs://), swift:// or gs://"

func withRetry(s storage.Store, log *slog.Logger) storage.Store {
	p := storage.DefaultRetryPolicy()
	p.Logger = log
	return storage.WithRetry(s, p)
}

// fileRoot returns the directory a file URL names. Only the local host
// makes sense, and "file://var/lib/x", a common slip, would otherwise
// quietly mean host "var".
func fileRoot(u *url.URL) (string, error) {
	switch {
	case u.Opaque != "":
		return "", fmt.Errorf("file URL needs an absolute path: file:///%s", strings.TrimPrefix(u.Opaque, "/"))
	case u.Host != "" && u.Host != "localhost":
		return "", fmt.Errorf("file URL names host %q; a directory needs an absolute path after three slashes, such as file:///%s%s", u.Host, u.Host, u.Path)
	case u.User != nil:
		return "", errors.New("file URL cannot carry a user name")
	case u.RawQuery != "" || u.Fragment != "":
		return "", errors.New(`file URL cannot have a query or fragment; percent-encode "?" and "#" in the path`)
	case u.Path == "" || !strings.HasPrefix(u.Path, "/"):
		return "", errors.New("file URL needs an absolute path: file:///absolute/path")
	}
	return u.Path, nil
}

// Redact returns prefix fit for logs and error messages: no user
// information, and no query values, which often carry SAS tokens or keys.
func Redact(prefix string) string {
	u, err := url.Parse(prefix)
	if err != nil {
		if i := strings.Index(prefix, "://"); i >= 0 {
			return prefix[:i+3] + "(unparsable, redacted)"
		}
		return "(unparsable, redacted)"
	}
	u.User = nil
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"REDACTED"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}
