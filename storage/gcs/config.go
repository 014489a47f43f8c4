package gcs

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config is everything New needs. ConfigFromEnv builds it from a prefix URL
// and the environment.
type Config struct {
	Bucket string
	Prefix string // "" or ending in "/"
	// Endpoint is an emulator's base URL (STORAGE_EMULATOR_HOST), such as
	// http://127.0.0.1:4443; empty means Google Cloud Storage itself. An
	// emulator is used without authentication.
	Endpoint string
	// CredentialsFile is GOOGLE_APPLICATION_CREDENTIALS; empty means the
	// default credentials (gcloud's, or the instance's service account).
	CredentialsFile string

	// ChunkSize is the upload buffer: an upload of any size holds one.
	ChunkSize int
	// IOTimeout cuts a connection on which no byte moved either way.
	IOTimeout time.Duration
	// ChunkRetryDeadline bounds the retries of one chunk of an upload,
	// which the library counts in time rather than attempts.
	ChunkRetryDeadline time.Duration
	// MaxAttempts bounds the client library's own attempts per call; the
	// retry decorator wraps the whole call again. Kept above one for
	// uploads from a stream, whose chunks the library can resend but the
	// decorator cannot.
	MaxAttempts int
}

const (
	// DefaultChunkSize must be a multiple of 256 KiB.
	DefaultChunkSize   = 8 << 20
	DefaultIOTimeout   = 60 * time.Second
	DefaultMaxAttempts = 4
	// DefaultChunkRetryDeadline is about what DefaultMaxAttempts take.
	DefaultChunkRetryDeadline = 15 * time.Second
)

// ConfigFromEnv reads gs://bucket/path, GOOGLE_APPLICATION_CREDENTIALS and
// STORAGE_EMULATOR_HOST.
func ConfigFromEnv(u *url.URL, getenv func(string) string) (Config, error) {
	c := Config{
		ChunkSize:   DefaultChunkSize,
		IOTimeout:   DefaultIOTimeout,
		MaxAttempts: DefaultMaxAttempts,

		ChunkRetryDeadline: DefaultChunkRetryDeadline,
	}
	switch {
	case u.User != nil:
		return c, errors.New("gs prefix cannot carry credentials; set GOOGLE_APPLICATION_CREDENTIALS")
	case u.RawQuery != "" || u.Fragment != "":
		return c, errors.New(`gs prefix cannot have a query or fragment; percent-encode "?" and "#" in the path`)
	case u.Host == "":
		return c, errors.New("gs prefix needs a bucket: gs://bucket/path")
	}
	c.Bucket = u.Host
	if p := strings.Trim(u.Path, "/"); p != "" {
		c.Prefix = p + "/"
	}
	c.CredentialsFile = strings.TrimSpace(getenv("GOOGLE_APPLICATION_CREDENTIALS"))
	if host := strings.TrimSpace(getenv("STORAGE_EMULATOR_HOST")); host != "" {
		ep, err := emulatorURL(host)
		if err != nil {
			return c, fmt.Errorf("STORAGE_EMULATOR_HOST: %w", err)
		}
		c.Endpoint = ep
	}
	return c, nil
}

// emulatorURL accepts host:port or a URL, as the Google libraries do; they
// ignore a path too.
func emulatorURL(host string) (string, error) {
	if !strings.Contains(host, "://") {
		host = "http://" + host
	}
	u, err := url.Parse(host)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("want host:port or an http:// URL")
	}
	if u.RawQuery != "" || u.User != nil {
		return "", errors.New("want host:port or an http:// URL without a query or credentials")
	}
	return u.Scheme + "://" + u.Host, nil
}
