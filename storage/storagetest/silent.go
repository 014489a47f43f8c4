package storagetest

import (
	"net"
	"testing"
)

// SilentServer listens on 127.0.0.1 and returns its host:port: it accepts
// connections and never answers, like a host whose network went away
// mid-call. It closes them all when the test ends.
func SilentServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 64)
	t.Cleanup(func() {
		l.Close()
		for len(held) > 0 {
			(<-held).Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	return l.Addr().String()
}
