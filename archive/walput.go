package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// PutWALOptions is what storing one file of pg_wal needs: wal-push and
// wal-receive store through the same code, so both name, check and
// encode a file alike.
type PutWALOptions struct {
	Store   storage.Store
	Codec   compression.Codec
	Encrypt *crypto.Recipients // nil: stored unencrypted
	Path    string             // the file PostgreSQL asks to archive (%p)
	// SpoolDir holds the encoded copy while it is stored (see
	// SpoolEncoded); empty means os.TempDir().
	SpoolDir string
	Log      *slog.Logger
}

// PutWALResult says what was stored.
type PutWALResult struct {
	Key            string
	AlreadyStored  bool
	Size, Stored   int64
	SystemIdentity uint64
}

// ErrWALConflict means a different file is already archived under the
// same name: archiving must stop until a human looks.
var ErrWALConflict = errors.New("a different file is already archived under this name")

// PutWAL stores one WAL segment, timeline history, backup history or
// partial segment. It returns only once the object is durable; storing the
// same content again succeeds without storing it twice.
func PutWAL(ctx context.Context, o PutWALOptions) (PutWALResult, error) {
	res, digest, err := prepareWAL(ctx, o)
	if err != nil {
		return res, err
	}
	name := filepath.Base(o.Path)
	// The digest is of the file as PostgreSQL wrote it, whatever the
	// encoding, so the same file pushed again is recognised as stored
	// even when compression or encryption changed in between.
	existing, err := FindWAL(ctx, o.Store, name)
	switch {
	case err == nil && existing.Digest == digest:
		res.Key, res.AlreadyStored = existing.Key, true
		return res, nil
	case err == nil:
		return res, fmt.Errorf("%s: %w (%s has digest %s, this file %s); archive unchanged",
			name, ErrWALConflict, existing.Key, existing.Digest, digest)
	case !errors.Is(err, storage.ErrNotFound):
		return res, err
	}
	return putWAL(ctx, o, res, digest)
}

// prepareWAL checks the file at o.Path before it may take its name in the
// archive (name, content, the cluster it belongs to) and returns its digest.
func prepareWAL(ctx context.Context, o PutWALOptions) (PutWALResult, string, error) {
	var res PutWALResult
	name := filepath.Base(o.Path)
	if !pgcontrol.IsArchivableName(name) {
		return res, "", fmt.Errorf("%s: not a WAL segment, .history, .backup or .partial file name", o.Path)
	}
	digest, size, head, err := digestFile(o.Path)
	if err != nil {
		return res, "", err
	}
	res.Size = size

	seg, err := checkFile(o.Path, name, size, head)
	if err != nil {
		return res, "", fmt.Errorf("%s: %w; not archived", o.Path, err)
	}
	if seg != nil {
		res.SystemIdentity = seg.sysid
		if err := CheckIdentity(ctx, o.Store, seg.sysid, 0, uint64(seg.segSize)); err != nil {
			return res, "", fmt.Errorf("%s: %w", name, err)
		}
	}
	return res, digest, nil
}

// putWAL stores the file at o.Path under its name and digest.
func putWAL(ctx context.Context, o PutWALOptions, res PutWALResult, digest string) (PutWALResult, error) {
	enc := Encoding{Codec: o.Codec, To: o.Encrypt}
	res.Key = WALKey(filepath.Base(o.Path), digest, enc.Ext())
	var err error
	if res.Stored, err = putEncoded(ctx, o, res.Key, enc); err != nil {
		return res, err // the store names the call and the key
	}
	return res, nil
}

// putEncoded stores the encoded file under key and returns the stored
// size. It encodes once into a spool file; when none can be written (a
// full or read-only temp directory, which must not stop archiving: pg_wal
// may be filling up because archiving stopped), it encodes as the store
// reads, which costs a second encoding on stores that measure an object
// before sending it.
func putEncoded(ctx context.Context, o PutWALOptions, key string, enc Encoding) (int64, error) {
	spool, size, err := SpoolEncoded(o.Path, o.SpoolDir, enc)
	if err == nil {
		defer spool.Close()
		return size, o.Store.Put(ctx, key, spool, size)
	}
	if o.Log != nil {
		o.Log.Warn("cannot spool the encoded file; encoding it as it is sent", "error", err)
	}
	body := NewEncodedFile(o.Path, enc)
	defer body.Close()
	counted := &countingSeeker{EncodedFile: body}
	if err := o.Store.Put(ctx, key, counted, -1); err != nil {
		return 0, err
	}
	return counted.n, nil
}

// countingSeeker counts what the last attempt of a Put read.
type countingSeeker struct {
	*EncodedFile
	n int64
}

func (c *countingSeeker) Read(p []byte) (int, error) {
	n, err := c.EncodedFile.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingSeeker) Seek(offset int64, whence int) (int64, error) {
	pos, err := c.EncodedFile.Seek(offset, whence)
	if err == nil {
		c.n = pos
	}
	return pos, err
}

// WALHeadSize covers the long page header that starts every segment.
const WALHeadSize = 64

// DigestWALFile returns the short SHA-256 of path (the digest in its
// key) and its size.
func DigestWALFile(path string) (digest string, size int64, err error) {
	digest, size, _, err = digestFile(path)
	return digest, size, err
}

// digestFile returns the short SHA-256 of path, its size and its first bytes.
func digestFile(path string) (digest string, size int64, head []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, nil, err
	}
	defer f.Close()
	h := sha256.New()
	head = make([]byte, WALHeadSize)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", 0, nil, fmt.Errorf("read %s: %w", path, err)
	}
	head = head[:n]
	h.Write(head)
	rest, err := io.Copy(h, f)
	if err != nil {
		return "", 0, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))[:DigestLen], int64(n) + rest, head, nil
}
