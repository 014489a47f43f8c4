package gcs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"

	gstorage "cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/walnut-pg/walnut/storage"
)

// translateError maps a library error from op on key to walnut's terms:
// only a missing object in an existing bucket is ErrNotFound (wal-fetch
// tells PostgreSQL "not in the archive" on it), what another attempt cannot
// fix is Permanent with a hint naming what to check, and everything else is
// left to the retry decorator.
func (s *Store) translateError(ctx context.Context, op, key string, err error) error {
	where := strings.TrimSpace("gcs " + op + " " + key)
	var gerr *googleapi.Error
	switch {
	case errors.Is(err, gstorage.ErrObjectNotExist):
		// Reads of an object answer 404 whether the object or the whole
		// bucket is missing; a missing bucket must not read as "not in
		// the archive".
		if _, berr := s.bucket.Retryer(s.retry()...).Attrs(ctx); errors.Is(berr, gstorage.ErrBucketNotExist) {
			return s.bucketMissing(where)
		}
		return fmt.Errorf("%s: %w", where, storage.ErrNotFound)
	case errors.Is(err, gstorage.ErrBucketNotExist):
		return s.bucketMissing(where)
	case errors.As(err, &gerr):
		desc := fmt.Sprintf("HTTP %d", gerr.Code)
		if msg := oneLine(gerr.Message); msg != "" {
			desc += ": " + msg
		}
		switch {
		case gerr.Code == http.StatusNotFound:
			// Only a bucket can be missing for a list, an upload or a
			// delete.
			return s.bucketMissing(where)
		case gerr.Code == http.StatusUnauthorized || gerr.Code == http.StatusForbidden:
			return storage.Permanent(fmt.Errorf("%s: access to bucket %q denied (%s); check GOOGLE_APPLICATION_CREDENTIALS and the account's roles on the bucket",
				where, s.cfg.Bucket, desc))
		case gerr.Code == http.StatusRequestTimeout, gerr.Code == http.StatusTooManyRequests, gerr.Code >= 500:
			return fmt.Errorf("%s: %s", where, desc)
		case gerr.Code >= 400:
			return storage.Permanent(fmt.Errorf("%s: %s", where, desc))
		}
		return fmt.Errorf("%s: %s", where, desc)
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

// urlQuery matches the query of a URL in a message: the library's list
// URLs carry a dozen parameters that only hide the error.
var urlQuery = regexp.MustCompile(`(https?://[^\s"'?]*)\?[^\s"']*`)

func (s *Store) bucketMissing(where string) error {
	return storage.Permanent(fmt.Errorf("%s: bucket %q does not exist; create it, or check the bucket in WALNUT_PREFIX and the project of GOOGLE_APPLICATION_CREDENTIALS",
		where, s.cfg.Bucket))
}

// oneLine folds a multi-line library message (token endpoint responses
// come as several lines) into one.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// clip cuts s to about n bytes: some library messages run to kilobytes.
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
