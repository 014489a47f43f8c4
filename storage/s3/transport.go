package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// newTransport returns the HTTP transport for one store. Every phase of a
// request has a bound, so no stalled connection hangs walnut: dialing, the
// TLS handshake, the wait for response headers, and above all the
// connection itself, which fails once no byte has moved either way for
// stall (see stallConn). Put has no overall deadline, since a large
// upload may rightly take hours, so the stall bound is what cuts a dead
// upload.
func newTransport(c config) (*http.Transport, error) {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return newStallConn(conn, c.stallTimeout), nil
		},
		MaxIdleConns:        32,
		MaxIdleConnsPerHost: 32,
		// Idle connections go before their stall deadline would break
		// them under a new request.
		IdleConnTimeout:     c.stallTimeout / 2,
		TLSHandshakeTimeout: 10 * time.Second,
		// A backstop only: the stall deadline, pushed by the last byte
		// of the request, fires first and names its setting.
		ResponseHeaderTimeout: 2 * c.stallTimeout,
		ExpectContinueTimeout: time.Second,
		// Objects are stored compressed; never let Go undo a
		// Content-Encoding a proxy or server adds.
		DisableCompression: true,
	}
	if c.secure {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if c.caFile != "" {
			pem, err := os.ReadFile(c.caFile)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.caFrom, err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s=%s: no PEM certificate in it", c.caFrom, c.caFile)
			}
			tr.TLSClientConfig.RootCAs = pool
		}
	}
	return tr, nil
}

// stallConn fails a read or write once the connection has carried no
// bytes for the stall timeout. Each read or write pushes the deadline of
// both directions forward: while a request body is being written, the
// transport's pending read for the response must not time out, and once
// it is written the server has the same grace to answer. An idle
// connection with no call in progress has no pending deadline to trip.
type stallConn struct {
	net.Conn
	timeout time.Duration
	// last is when the deadline was last pushed, in UnixNano; pushing it
	// on every small read would cost a timer update per TLS record.
	last atomic.Int64
}

func newStallConn(c net.Conn, timeout time.Duration) *stallConn {
	s := &stallConn{Conn: c, timeout: timeout}
	s.extend()
	return s
}

func (s *stallConn) extend() {
	now := time.Now()
	if now.UnixNano()-s.last.Load() < int64(s.timeout/16) {
		return
	}
	s.last.Store(now.UnixNano())
	s.Conn.SetDeadline(now.Add(s.timeout))
}

func (s *stallConn) Read(p []byte) (int, error) {
	s.extend()
	n, err := s.Conn.Read(p)
	if n > 0 {
		s.extend()
	}
	return n, stallError(err, s.timeout)
}

func (s *stallConn) Write(p []byte) (int, error) {
	s.extend()
	n, err := s.Conn.Write(p)
	if n > 0 {
		s.extend()
	}
	return n, stallError(err, s.timeout)
}

// stallError says why a deadline we set fired; the bare "i/o timeout"
// names no cause.
func stallError(err error, timeout time.Duration) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &stalledError{err: err, timeout: timeout}
	}
	return err
}

// stalledError is a connection cut for carrying nothing for too long. It
// is a net.Error with Timeout() true, so HTTP clients treat it as the
// timeout it is.
type stalledError struct {
	err     error
	timeout time.Duration
}

func (e *stalledError) Error() string {
	return fmt.Sprintf("connection stalled: no data moved for %s (%s)", e.timeout, envStallTimeout)
}
func (e *stalledError) Unwrap() error   { return e.err }
func (e *stalledError) Timeout() bool   { return true }
func (e *stalledError) Temporary() bool { return true }
