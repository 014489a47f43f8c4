package compression

import (
	"errors"
	"fmt"
	"io"
)

// ErrCorrupt matches, through errors.Is, every failure to decode a stream
// because of its own bytes: cut short or damaged. It never matches a
// failure of the reader underneath (a broken connection), which is that
// reader's error, unchanged.
var ErrCorrupt = errors.New("compressed stream is truncated or corrupt")

// DecodeError says what is wrong with a stream: the decoder's own words
// are cryptic ("magic number mismatch" for a cut-off zstd object).
type DecodeError struct {
	Codec     string
	Truncated bool // the stream ends before its end marker
	Err       error
}

func (e *DecodeError) Error() string {
	if e.Truncated {
		return fmt.Sprintf("truncated %s stream: the object ends before its end marker (%v)", e.Codec, e.Err)
	}
	return fmt.Sprintf("corrupt %s stream: %v", e.Codec, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

func (e *DecodeError) Is(target error) bool { return target == ErrCorrupt }

// errEmpty stands for a stream with no bytes at all where the format
// always has some: every zstd, lz4 and gzip writer writes a frame, even
// for no data.
var errEmpty = errors.New("no data at all")

// source watches what a decoder reads, so that its failures can be told
// apart from the decoder's complaints about the data.
type source struct {
	r   io.Reader
	n   int64
	err error // the reader's own failure, not io.EOF
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// checked decodes src with newDecoder and puts a decoding failure in plain
// words. framed codecs never write an empty stream, so an empty one is
// truncated.
func checked(codec string, framed bool, r io.Reader, newDecoder func(io.Reader) (io.ReadCloser, error)) (io.ReadCloser, error) {
	c := &checkedReader{codec: codec, framed: framed, src: &source{r: r}}
	dec, err := newDecoder(c.src)
	if err != nil {
		if c.src.n == 0 && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err // the decoder's set-up, not the data
		}
		return nil, c.check(err)
	}
	c.dec = dec
	return c, nil
}

type checkedReader struct {
	codec  string
	framed bool
	src    *source
	dec    io.ReadCloser
}

func (c *checkedReader) check(err error) error {
	switch {
	case err == nil:
		return nil
	case c.src.err != nil:
		// The reader underneath failed: that is the story, whatever the
		// decoder made of it.
		return err
	case err == io.EOF:
		if c.framed && c.src.n == 0 {
			return &DecodeError{Codec: c.codec, Truncated: true, Err: errEmpty}
		}
		return io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &DecodeError{Codec: c.codec, Truncated: true, Err: err}
	case errors.Is(err, errClosed):
		return err
	}
	return &DecodeError{Codec: c.codec, Err: err}
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.dec.Read(p)
	return n, c.check(err)
}

// WriteTo keeps the decoder's own WriteTo, which zstd's is faster with; a
// failure to write is the destination's, never the stream's.
func (c *checkedReader) WriteTo(w io.Writer) (int64, error) {
	wt, ok := c.dec.(io.WriterTo)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{c})
	}
	dst := &destination{w: w}
	n, err := wt.WriteTo(dst)
	if err != nil && dst.err != nil {
		return n, err
	}
	err = c.check(err)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.dec.Close() }

type destination struct {
	w   io.Writer
	err error
}

func (d *destination) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	if err != nil {
		d.err = err
	}
	return n, err
}
