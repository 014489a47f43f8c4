package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/storage"
)

// ErrEncrypted is returned for .pgp objects until this build can decrypt.
var ErrEncrypted = errors.New("object is OpenPGP-encrypted and this walnut has no decryption configured")

// pipeBufSize is how much compressed data putStream gathers before
// handing it to the store, and openDecoded reads from it at once.
const pipeBufSize = 256 << 10

// putStream stores under key whatever write produces, compressed with c,
// streaming through a pipe so memory does not grow with the object. If
// write fails, the Put sees the error instead of EOF and stores nothing.
// It returns the number of bytes stored (after compression).
func putStream(ctx context.Context, s storage.Store, key string, c compression.Codec, write func(w io.Writer) error) (int64, error) {
	pr, pw := io.Pipe()
	var stored atomic.Int64
	done := make(chan error, 1)
	go func() {
		err := s.Put(ctx, key, &countingReader{r: pr, n: &stored}, -1)
		pr.CloseWithError(err) // unblock the writer if Put gave up early
		done <- err
	}()
	// Compressed blocks of PostgreSQL pages are a few KiB each; handed
	// over one by one, every block would cost a goroutine switch here
	// and a write in the store.
	bw := bufio.NewWriterSize(pw, pipeBufSize)
	err := encodeTo(bw, c, write)
	if err == nil {
		err = bw.Flush()
	}
	pw.CloseWithError(err) // nil: EOF, the Put commits
	if putErr := <-done; err == nil && putErr != nil {
		err = fmt.Errorf("store %s: %w", key, putErr)
	}
	return stored.Load(), err
}

func encodeTo(w io.Writer, c compression.Codec, write func(w io.Writer) error) error {
	cw, err := c.NewWriter(w)
	if err != nil {
		return err
	}
	if err := write(cw); err != nil {
		cw.Close()
		return err
	}
	return cw.Close()
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// openDecoded opens key and returns its decompressed content, choosing the
// codec from the key's extension.
func openDecoded(ctx context.Context, s storage.Store, key string) (io.ReadCloser, error) {
	if isEncryptedKey(key) {
		return nil, fmt.Errorf("%s: %w", key, ErrEncrypted)
	}
	c, _ := compression.ForKey(key)
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	// Decoders read a block header, then the block: a few KiB at a time
	// for PostgreSQL pages, one read call each without this buffer.
	dr, err := c.NewReader(bufio.NewReaderSize(rc, pipeBufSize))
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &decodedReader{ReadCloser: dr, body: rc}, nil
}

func isEncryptedKey(key string) bool { return strings.HasSuffix(key, encryptedExt) }

type decodedReader struct {
	io.ReadCloser
	body io.Closer
}

func (d *decodedReader) Close() error {
	err := d.ReadCloser.Close()
	if berr := d.body.Close(); err == nil {
		err = berr
	}
	return err
}

// compressedFile is a rewindable stream of a file's compressed bytes. The
// retry decorator rewinds a Put's reader with Seek; rather than buffer the
// compressed object, a rewind starts the compression again from the file.
type compressedFile struct {
	path  string
	codec compression.Codec
	pr    *io.PipeReader
	off   int64
}

func (f *compressedFile) start() error {
	in, err := os.Open(f.path)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		err := encodeTo(pw, f.codec, func(w io.Writer) error {
			_, err := io.Copy(w, in)
			return err
		})
		in.Close()
		pw.CloseWithError(err)
	}()
	f.pr, f.off = pr, 0
	return nil
}

func (f *compressedFile) Read(p []byte) (int, error) {
	if f.pr == nil {
		if err := f.start(); err != nil {
			return 0, err
		}
	}
	n, err := f.pr.Read(p)
	f.off += int64(n)
	return n, err
}

// Seek supports only what a rewind needs: asking the offset, and going back
// to the start.
func (f *compressedFile) Seek(offset int64, whence int) (int64, error) {
	switch {
	case offset == 0 && whence == io.SeekCurrent:
		return f.off, nil
	case offset == 0 && whence == io.SeekStart:
		f.Close()
		return 0, nil
	}
	return 0, fmt.Errorf("compressed stream of %s: seek(%d, %d) not supported", f.path, offset, whence)
}

func (f *compressedFile) Close() error {
	if f.pr != nil {
		f.pr.CloseWithError(io.ErrClosedPipe)
		f.pr = nil
	}
	f.off = 0
	return nil
}
