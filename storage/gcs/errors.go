package gcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/walnut-pg/walnut/storage"
)

// apiError is an answer of the service other than success.
type apiError struct {
	code    int
	message string
}

func (e *apiError) Error() string {
	if e.message == "" {
		return fmt.Sprintf("HTTP %d", e.code)
	}
	return fmt.Sprintf("HTTP %d: %s", e.code, e.message)
}

// retryable reports whether another attempt may succeed.
func (e *apiError) retryable() bool {
	return e.code == http.StatusRequestTimeout || e.code == http.StatusTooManyRequests || e.code >= 500
}

// readAPIError reads the service's error from resp and closes its body.
// The JSON API answers {"error":{"code":..,"message":..}}; anything else
// (a proxy's page) is shown as a clipped line.
func readAPIError(resp *http.Response) *apiError {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := ""
	if json.Unmarshal(b, &body) == nil {
		msg = body.Error.Message
	} else if !strings.HasPrefix(strings.TrimSpace(string(b)), "<") {
		msg = string(b)
	}
	return &apiError{code: resp.StatusCode, message: clip(oneLine(msg), 200)}
}

// translateError maps a failure of op on key to walnut's terms: only a
// missing object in an existing bucket is ErrNotFound (wal-fetch tells
// PostgreSQL "not in the archive" on it), what another attempt cannot fix
// is Permanent with a hint naming what to check, and everything else is
// left to the retry decorator.
func (s *Store) translateError(ctx context.Context, op, key string, err error) error {
	where := strings.TrimSpace("gcs " + op + " " + key)
	var aerr *apiError
	if errors.As(err, &aerr) {
		switch {
		case aerr.code == http.StatusPreconditionFailed && op == "create":
			return storage.Exists("gcs "+op, key)
		case aerr.code == http.StatusNotFound && (op == "get" || op == "stat" || op == "delete"):
			// Reads of an object answer 404 whether the object or the
			// whole bucket is missing; a missing bucket must not read as
			// "not in the archive".
			if s.bucketExists(ctx) == errBucketMissing {
				return s.bucketMissing(where)
			}
			return fmt.Errorf("%s: %w", where, storage.ErrNotFound)
		case aerr.code == http.StatusNotFound:
			// Only a bucket can be missing for a list or an upload.
			return s.bucketMissing(where)
		case aerr.code == http.StatusUnauthorized || aerr.code == http.StatusForbidden:
			return storage.Permanent(fmt.Errorf("%s: access to bucket %q denied (%s); check GOOGLE_APPLICATION_CREDENTIALS and the account's roles on the bucket",
				where, s.cfg.Bucket, aerr))
		case aerr.retryable():
			return fmt.Errorf("%s: %s", where, aerr)
		default:
			return storage.Permanent(fmt.Errorf("%s: %s", where, aerr))
		}
	}
	var cred *credentialError
	if errors.As(err, &cred) {
		msg := fmt.Sprintf("%s: %s; check GOOGLE_APPLICATION_CREDENTIALS", where, clip(oneLine(cred.Error()), 160))
		if cred.transient() {
			return &oneLineError{msg: msg, err: err}
		}
		return storage.Permanent(errors.New(msg))
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return storage.Permanent(fmt.Errorf("%s: host %s does not exist: check STORAGE_EMULATOR_HOST", where, dns.Name))
	}
	return &oneLineError{msg: where + ": " + urlQuery.ReplaceAllString(oneLine(err.Error()), "$1"), err: err}
}

// urlQuery matches the query of a URL in a message: upload session URLs
// carry an upload id that only hides the error.
var urlQuery = regexp.MustCompile(`(https?://[^\s"'?]*)\?[^\s"']*`)

func (s *Store) bucketMissing(where string) error {
	return storage.Permanent(fmt.Errorf("%s: bucket %q does not exist; create it, or check the bucket in WALNUT_PREFIX and the project of GOOGLE_APPLICATION_CREDENTIALS",
		where, s.cfg.Bucket))
}

// oneLine folds a multi-line message (token endpoint responses come as
// several lines) into one.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// clip cuts s to about n bytes: some messages run to kilobytes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// oneLineError shows a folded message but keeps the cause for errors.Is
// (context.Canceled, DeadlineExceeded).
type oneLineError struct {
	msg string
	err error
}

func (e *oneLineError) Error() string { return e.msg }
func (e *oneLineError) Unwrap() error { return e.err }
