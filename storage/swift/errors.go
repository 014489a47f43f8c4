package swift

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/ncw/swift/v2"
	"github.com/walnut-pg/walnut/storage"
)

// opError is a failure in walnut's words: one line naming the key and what
// to check, never a response body's line breaks or a credential, while
// errors.Is and errors.As still reach the cause.
type opError struct {
	msg string
	err error
}

func (e *opError) Error() string { return e.msg }
func (e *opError) Unwrap() error { return e.err }

func (s *Store) errorf(err error, format string, args ...any) error {
	msg := oneLine(fmt.Sprintf(format, args...))
	// Nothing puts the password in a message, but a server could echo it.
	if len(s.cfg.password) >= 4 {
		msg = strings.ReplaceAll(msg, s.cfg.password, "REDACTED")
	}
	return &opError{msg: msg, err: err}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func status(err error) int {
	var se *swift.Error
	if errors.As(err, &se) {
		return se.StatusCode
	}
	return 0
}

// translate maps a failed call on key to walnut's terms: what another
// attempt cannot fix is storage.Permanent, the rest is left to the retry
// decorator. A 404 on an object is not handled here: see notFound.
func (s *Store) translate(ctx context.Context, op, key string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return s.errorf(cerr, "%s %s: %v", op, key, cerr)
	}
	code := status(err)
	switch {
	case errors.Is(err, swift.TimeoutError):
		return s.errorf(err, "%s %s: swift stopped answering; the request timed out", op, key)
	case errors.Is(err, swift.ContainerNotFound):
		return s.containerMissing(op, key, err)
	case code == 403:
		return storage.Permanent(s.errorf(err, "%s %s: swift denied access to container %q (403 Forbidden): check that %s has rights on it", op, key, s.container, s.cfg.userVar))
	case code == 401:
		// Credentials that authenticate but whose token is then refused:
		// the token expired or was revoked, and the next attempt logs in
		// again (and fails for good if the credentials are wrong now).
		return s.errorf(err, "%s %s: swift refused the token (401 Unauthorized)", op, key)
	case code == 400 || code == 405 || code == 411 || code == 412 || code == 413 || code == 414:
		return storage.Permanent(s.errorf(err, "%s %s: swift rejected the request: %v", op, key, err))
	}
	return s.errorf(err, "%s %s: %v", op, key, err)
}

func (s *Store) containerMissing(op, key string, err error) error {
	return storage.Permanent(s.errorf(err, "%s %s: swift container %q does not exist: create it, or correct the container in WALNUT_PREFIX (swift://container/path)", op, key, s.container))
}

// notFound answers a 404 on an object. Swift gives the same 404 for a
// missing object and for a missing container, and only the first means
// "not in the archive": wal-fetch answering that for a mistyped container
// would end a recovery. So the container is checked, once per store.
func (s *Store) notFound(ctx context.Context, op, key string, err error) error {
	if !s.containerSeen.Load() {
		if _, _, cerr := s.conn.Container(ctx, s.container); cerr != nil {
			return s.translate(ctx, op, key, cerr)
		}
		s.containerSeen.Store(true)
	}
	return fmt.Errorf("%s %s: %w", op, key, storage.ErrNotFound)
}

// authError maps a failed log-in. Only the identity service's verdict on
// the credentials, or a catalog without our endpoint, is permanent.
func (s *Store) authError(ctx context.Context, err error) error {
	where := redactURL(s.cfg.authURL)
	if cerr := ctx.Err(); cerr != nil {
		return s.errorf(cerr, "swift authentication at %s: %v", where, cerr)
	}
	var se *swift.Error
	switch code := status(err); {
	case errors.Is(err, swift.TimeoutError):
		return s.errorf(err, "swift authentication at %s: no answer within %s", where, s.conn.ConnectTimeout)
	case code == 400 || code == 401 || code == 403:
		check := s.cfg.userVar + " and " + s.cfg.passwordVar
		if s.cfg.tenant != "" {
			check = s.cfg.userVar + ", " + s.cfg.passwordVar + " and " + s.cfg.tenantVar
		}
		return storage.Permanent(s.errorf(err, "swift container %q: authentication at %s failed for user %q (%d): check %s", s.container, where, s.user(), code, check))
	case errors.As(err, &se) && code == 0 && strings.Contains(se.Text, "storage url"):
		return storage.Permanent(s.errorf(err, "swift container %q: the service catalog of %s has no object-store endpoint for region %q and interface %q: check %s and %s",
			s.container, where, s.cfg.region, s.cfg.endpointType, s.cfg.regionVar, s.cfg.endpointVar))
	}
	return s.errorf(err, "swift authentication at %s: %v", where, err)
}

func (s *Store) user() string {
	if s.cfg.user != "" {
		return s.cfg.user
	}
	return s.cfg.userID
}

// redactURL drops what could be a credential from a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment = nil, "", "", ""
	return u.String()
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }
