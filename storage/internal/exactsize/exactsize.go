// Package exactsize makes a Put of a known size fail unless its source
// holds exactly that many bytes, so a short source never becomes a short
// object.
package exactsize

import (
	"errors"
	"fmt"
	"io"
)

// Reader returns r limited to size bytes; reading fails if r ends sooner
// or holds more.
func Reader(r io.Reader, size int64) io.Reader {
	return &reader{r: r, left: size}
}

type reader struct {
	r    io.Reader
	left int64
	read int64
}

func (e *reader) Read(p []byte) (int, error) {
	if e.left == 0 {
		var one [1]byte
		if n, _ := io.ReadFull(e.r, one[:]); n > 0 {
			return 0, fmt.Errorf("source holds more than the %d bytes announced", e.read)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	e.read += int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		return n, fmt.Errorf("source ended after %d of the %d bytes announced", e.read, e.read+e.left)
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}
