package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/storage"
)

// ErrNoPrivateKey is returned for a .pgp object when no private key is
// configured to decrypt it.
var ErrNoPrivateKey = errors.New("object is OpenPGP-encrypted and no private key is configured: set WALNUT_PGP_PRIVATE_KEY_FILE (and WALNUT_PGP_PASSPHRASE_FILE if the key has one)")

// encoding is how new objects are written: compressed with codec, then,
// when there are recipients, encrypted to them (compressing first, since
// ciphertext does not compress).
type encoding struct {
	codec compression.Codec
	to    *crypto.Recipients // nil: stored unencrypted
}

// ext is what the key of an object written this way ends with.
func (e encoding) ext() string {
	if e.to != nil {
		return e.codec.Extension() + encryptedExt
	}
	return e.codec.Extension()
}

// putStream stores under key whatever write produces, encoded with e,
// streaming through a pipe so memory does not grow with the object. If
// write fails, the Put sees the error instead of EOF and stores nothing.
// It returns the number of bytes stored (after compression).
func putStream(ctx context.Context, s storage.Store, key string, e encoding, write func(w io.Writer) error) (int64, error) {
	pr, pw := io.Pipe()
	var stored atomic.Int64
	done := make(chan error, 1)
	go func() {
		err := s.Put(ctx, key, &countingReader{r: pr, n: &stored}, -1)
		pr.CloseWithError(err) // unblock the writer if Put gave up early
		done <- err
	}()
	err := encodeTo(pw, e, write)
	pw.CloseWithError(err) // nil: EOF, the Put commits
	if putErr := <-done; err == nil && putErr != nil {
		err = fmt.Errorf("store %s: %w", key, putErr)
	}
	return stored.Load(), err
}

func encodeTo(w io.Writer, e encoding, write func(w io.Writer) error) error {
	if e.to != nil {
		ew, err := e.to.Encrypt(w)
		if err != nil {
			return fmt.Errorf("encrypt: %w", err)
		}
		if err := encodeTo(ew, encoding{codec: e.codec}, write); err != nil {
			return err // the message is left without its MDC: unreadable
		}
		return ew.Close()
	}
	cw, err := e.codec.NewWriter(w)
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

// openDecoded opens key and returns its content, decrypted with kr if the
// key ends in .pgp and decompressed with the codec its extension names, so
// an archive holding both kinds reads without configuration. The content
// is verified only once it has been read to io.EOF (an OpenPGP message is
// checked at its end): callers that may stop early use readToEnd.
func openDecoded(ctx context.Context, s storage.Store, key string, kr *crypto.Keyring) (io.ReadCloser, error) {
	encrypted := isEncryptedKey(key)
	if encrypted && kr == nil {
		return nil, ErrNoPrivateKey
	}
	c, _ := compression.ForKey(strings.TrimSuffix(key, encryptedExt))
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	d := &decodedReader{body: rc}
	var compressed io.Reader = rc
	if encrypted {
		if d.plain, err = kr.Decrypt(rc); err != nil {
			rc.Close()
			return nil, fmt.Errorf("decrypt: %w", err)
		}
		compressed = d.plain
	}
	if d.ReadCloser, err = c.NewReader(compressed); err != nil {
		rc.Close()
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return d, nil
}

func isEncryptedKey(key string) bool { return strings.HasSuffix(key, encryptedExt) }

type decodedReader struct {
	io.ReadCloser           // the decompressor
	body          io.Closer // the stored object
	plain         io.Reader // the decrypted stream, if encrypted
}

// Read ends with the decryptor's verdict: a decompressor may stop at the
// end of its frame before the decryptor has seen the end of the message
// and checked its MDC, so the rest is read before EOF is believed.
func (d *decodedReader) Read(p []byte) (int, error) {
	n, err := d.ReadCloser.Read(p)
	if err == io.EOF && d.plain != nil {
		if _, derr := io.Copy(io.Discard, d.plain); derr != nil {
			return n, derr
		}
		d.plain = nil
	}
	return n, err
}

// readToEnd reads what a parser left of a decoded object (the newline
// after JSON), so that the integrity checks at its end run.
func readToEnd(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

func (d *decodedReader) Close() error {
	err := d.ReadCloser.Close()
	if berr := d.body.Close(); err == nil {
		err = berr
	}
	return err
}

// compressedFile is a rewindable stream of a file's encoded (compressed,
// maybe encrypted) bytes. The retry decorator rewinds a Put's reader with
// Seek; rather than buffer the encoded object, a rewind starts compression
// and encryption again from the file (with a new session key: the object
// is written anew).
type compressedFile struct {
	path string
	enc  encoding
	pr   *io.PipeReader
	off  int64
}

func (f *compressedFile) start() error {
	in, err := os.Open(f.path)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		err := encodeTo(pw, f.enc, func(w io.Writer) error {
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
	return 0, fmt.Errorf("encoded stream of %s: seek(%d, %d) not supported", f.path, offset, whence)
}

func (f *compressedFile) Close() error {
	if f.pr != nil {
		f.pr.CloseWithError(io.ErrClosedPipe)
		f.pr = nil
	}
	f.off = 0
	return nil
}
