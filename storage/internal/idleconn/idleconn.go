// Package idleconn builds HTTP transports for the cloud backends whose
// connections die when no byte has moved either way for a while, so a
// stalled server or a silently dropped connection fails the call (and the
// retry decorator tries again) instead of hanging forever.
//
// A whole-request timeout cannot do this: uploading or downloading a large
// partition may rightly take hours, while a connection that moves nothing
// for a minute is dead.
package idleconn

import (
	"context"
	"net"
	"net/http"
	"time"
)

// Transport returns an HTTP transport whose connections are cut after idle
// without traffic in either direction, and which gives up connecting or
// completing a TLS handshake after dial.
func Transport(idle, dial time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return newConn(c, idle), nil
		},
		// A custom DialContext turns HTTP/2 off unless asked for; Google
		// Cloud Storage speaks it.
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: dial,
		// A pooled connection's reader waits for the next response with no
		// traffic; close it before its own deadline would, so a request is
		// never sent on a connection that is about to be cut.
		IdleConnTimeout:       idle / 2,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		ExpectContinueTimeout: time.Second,
	}
}

// conn pushes its deadline, for both directions, forward on every read and
// write that moves bytes. An upload's request body therefore keeps the wait
// for its response alive, and vice versa.
type conn struct {
	net.Conn
	idle time.Duration
}

func newConn(c net.Conn, idle time.Duration) net.Conn {
	c.SetDeadline(time.Now().Add(idle))
	return &conn{Conn: c, idle: idle}
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.Conn.SetDeadline(time.Now().Add(c.idle))
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	// A write of many bytes may block for a while on a slow link while
	// making progress; extend before, and again after, it.
	c.Conn.SetDeadline(time.Now().Add(c.idle))
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.Conn.SetDeadline(time.Now().Add(c.idle))
	}
	return n, err
}
