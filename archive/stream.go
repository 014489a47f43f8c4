package archive

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
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/storage"
)

// ErrNoPrivateKey is returned for a .pgp object when no private key is
// configured to decrypt it.
var ErrNoPrivateKey = errors.New("object is OpenPGP-encrypted and no private key is configured: set WALNUT_PGP_PRIVATE_KEY_FILE (and WALNUT_PGP_PASSPHRASE_FILE if the key has one)")

// Encoding is how new objects are written: compressed with Codec, then,
// when there are recipients, encrypted to them (compressing first, since
// ciphertext does not compress).
type Encoding struct {
	Codec compression.Codec
	To    *crypto.Recipients // nil: stored unencrypted
}

// Ext is what the key of an object written this way ends with.
func (e Encoding) Ext() string {
	if e.To != nil {
		return e.Codec.Extension() + encryptedExt
	}
	return e.Codec.Extension()
}

// pipeBufSize is how much encoded data PutStream gathers before handing
// it to the store, and OpenDecoded reads from the store at once.
const pipeBufSize = 256 << 10

// PutStream stores under key whatever write produces, encoded with e,
// streaming through a pipe so memory does not grow with the object. If
// write fails, the Put sees the error instead of EOF and stores nothing.
// It returns the number of bytes stored (after compression).
func PutStream(ctx context.Context, s storage.Store, key string, e Encoding, write func(w io.Writer) error) (int64, error) {
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
	err := Encode(bw, e, write)
	if err == nil {
		err = bw.Flush()
	}
	pw.CloseWithError(err) // nil: EOF, the Put commits
	if putErr := <-done; err == nil && putErr != nil {
		err = fmt.Errorf("store %s: %w", key, putErr)
	}
	return stored.Load(), err
}

func Encode(w io.Writer, e Encoding, write func(w io.Writer) error) error {
	if e.To != nil {
		ew, err := e.To.Encrypt(w)
		if err != nil {
			return fmt.Errorf("encrypt: %w", err)
		}
		if err := Encode(ew, Encoding{Codec: e.Codec}, write); err != nil {
			return err // the message is left without its MDC: unreadable
		}
		return ew.Close()
	}
	cw, err := e.Codec.NewWriter(w)
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

// OpenDecoded opens key and returns its content, decrypted with kr if the
// key ends in .pgp and decompressed with the codec its extension names, so
// an archive holding both kinds reads without configuration. The content
// is verified only once it has been read to io.EOF (an OpenPGP message is
// checked at its end): callers that may stop early use ReadToEnd.
func OpenDecoded(ctx context.Context, s storage.Store, key string, kr *crypto.Keyring) (io.ReadCloser, error) {
	if IsWALEKey(key) {
		return openWALE(ctx, s, key, kr)
	}
	encrypted := IsEncryptedKey(key)
	if encrypted && !kr.HasKeys() {
		return nil, ErrNoPrivateKey
	}
	c, _ := compression.ForKey(strings.TrimSuffix(key, encryptedExt))
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	d := &decodedReader{body: rc}
	// Decoders read a block header, then the block: a few KiB at a time
	// for PostgreSQL pages, one read of the store each without this.
	var compressed io.Reader = bufio.NewReaderSize(rc, pipeBufSize)
	if encrypted {
		if d.plain, err = kr.Decrypt(compressed); err != nil {
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

func IsEncryptedKey(key string) bool { return strings.HasSuffix(key, encryptedExt) }

type decodedReader struct {
	io.ReadCloser           // the decompressor
	body          io.Closer // the stored object
	plain         io.Reader // the decrypted stream, if encrypted
	proc          io.Closer // gpg decrypting it, for WAL-E's objects
}

func (d *decodedReader) closeProc() {
	if d.proc != nil {
		d.proc.Close()
	}
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

// ReadToEnd reads what a parser left of a decoded object (the newline
// after JSON), so that the integrity checks at its end run.
func ReadToEnd(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

func (d *decodedReader) Close() error {
	err := d.ReadCloser.Close()
	d.closeProc()
	if berr := d.body.Close(); err == nil {
		err = berr
	}
	return err
}

// EncodedFile is a rewindable stream of a file's encoded (compressed,
// maybe encrypted) bytes. The retry decorator rewinds a Put's reader with
// Seek; rather than buffer the encoded object, a rewind starts compression
// and encryption again from the file (with a new session key: the object
// is written anew).
type EncodedFile struct {
	path string
	enc  Encoding
	pr   *io.PipeReader
	off  int64
}

// NewEncodedFile streams the file at path encoded with e.
func NewEncodedFile(path string, e Encoding) *EncodedFile {
	return &EncodedFile{path: path, enc: e}
}

func (f *EncodedFile) start() error {
	in, err := os.Open(f.path)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		err := Encode(pw, f.enc, func(w io.Writer) error {
			_, err := io.Copy(w, in)
			return err
		})
		in.Close()
		pw.CloseWithError(err)
	}()
	f.pr, f.off = pr, 0
	return nil
}

func (f *EncodedFile) Read(p []byte) (int, error) {
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
func (f *EncodedFile) Seek(offset int64, whence int) (int64, error) {
	switch {
	case offset == 0 && whence == io.SeekCurrent:
		return f.off, nil
	case offset == 0 && whence == io.SeekStart:
		f.Close()
		return 0, nil
	}
	return 0, fmt.Errorf("encoded stream of %s: seek(%d, %d) not supported", f.path, offset, whence)
}

func (f *EncodedFile) Close() error {
	if f.pr != nil {
		f.pr.CloseWithError(io.ErrClosedPipe)
		f.pr = nil
	}
	f.off = 0
	return nil
}
