package gcs

import (
	"errors"
	"net"
	"net/http"
)

// The credentials layer sits between the library and the transport; an
// error that did not come from the transport came from getting a token.
// Telling the two apart lets a bad key file fail at once with a line that
// names GOOGLE_APPLICATION_CREDENTIALS, instead of being retried as if the
// network were at fault.

// markTransport marks the errors of the real transport.
type markTransport struct{ rt http.RoundTripper }

func (m markTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.rt.RoundTrip(req)
	if err != nil {
		return nil, &transportError{err: err}
	}
	return resp, nil
}

type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// credentialTransport is the outermost transport: it unmarks transport
// errors and marks every other one as a credentials failure.
type credentialTransport struct{ rt http.RoundTripper }

func (c credentialTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(req)
	if err == nil {
		return resp, nil
	}
	var te *transportError
	if errors.As(err, &te) {
		return nil, te.err
	}
	return nil, &credentialError{err: err}
}

// credentialError is a failure to get an access token.
type credentialError struct{ err error }

func (e *credentialError) Error() string { return "cannot get a Google access token: " + e.err.Error() }
func (e *credentialError) Unwrap() error { return e.err }

// transient reports whether getting a token failed for a reason another
// attempt may not meet: the token endpoint or metadata server unreachable.
func (e *credentialError) transient() bool {
	var ne net.Error
	return errors.As(e.err, &ne)
}
