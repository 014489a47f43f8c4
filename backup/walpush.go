package backup

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

// WALPushOptions is what wal-push needs.
type WALPushOptions struct {
	Store   storage.Store
	Codec   compression.Codec
	Encrypt *crypto.Recipients // nil: stored unencrypted
	Path    string             // the file PostgreSQL asks to archive (%p)
	Log     *slog.Logger
}

// WALPushResult says what wal-push did.
type WALPushResult struct {
	Key            string
	AlreadyStored  bool
	Size, Stored   int64
	SystemIdentity uint64
}

// ErrWALConflict means a different file is already archived under the
// same name: archiving must stop until a human looks.
var ErrWALConflict = errors.New("a different file is already archived under this name")

// WALPush stores one WAL segment, timeline history, backup history or
// partial segment. It returns only once the object is durable; pushing the
// same content again succeeds without storing it twice.
func WALPush(ctx context.Context, o WALPushOptions) (WALPushResult, error) {
	var res WALPushResult
	name := filepath.Base(o.Path)
	if !pgcontrol.IsArchivableName(name) {
		return res, fmt.Errorf("%s: not a WAL segment, .history, .backup or .partial file name", o.Path)
	}
	digest, size, head, err := digestFile(o.Path)
	if err != nil {
		return res, err
	}
	res.Size = size

	if pgcontrol.IsWALFileName(name) || pgcontrol.IsPartialFileName(name) {
		sysid, segSize, err := pgcontrol.WALSegmentSystemIdentifier(head)
		if err != nil {
			return res, fmt.Errorf("%s: %w", o.Path, err)
		}
		res.SystemIdentity = sysid
		if err := checkIdentity(ctx, o.Store, sysid, 0, uint64(segSize)); err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
	}

	// The digest is of the file as PostgreSQL wrote it, whatever the
	// encoding, so the same file pushed again is recognised as stored
	// even when compression or encryption changed in between.
	existing, err := findWAL(ctx, o.Store, name)
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

	enc := encoding{codec: o.Codec, to: o.Encrypt}
	res.Key = walKey(name, digest, enc.ext())
	body := &compressedFile{path: o.Path, enc: enc}
	defer body.Close()
	counted := &countingSeeker{compressedFile: body}
	if err := o.Store.Put(ctx, res.Key, counted, -1); err != nil {
		return res, fmt.Errorf("store %s: %w", res.Key, err)
	}
	res.Stored = counted.n
	return res, nil
}

// countingSeeker counts what the last attempt of a Put read.
type countingSeeker struct {
	*compressedFile
	n int64
}

func (c *countingSeeker) Read(p []byte) (int, error) {
	n, err := c.compressedFile.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingSeeker) Seek(offset int64, whence int) (int64, error) {
	pos, err := c.compressedFile.Seek(offset, whence)
	if err == nil {
		c.n = pos
	}
	return pos, err
}

// walHeadSize covers the long page header that starts every segment.
const walHeadSize = 64

// digestFile returns the short SHA-256 of path, its size and its first bytes.
func digestFile(path string) (digest string, size int64, head []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, nil, err
	}
	defer f.Close()
	h := sha256.New()
	head = make([]byte, walHeadSize)
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
	return hex.EncodeToString(h.Sum(nil))[:digestLen], int64(n) + rest, head, nil
}

// findWAL returns the one object archived under name; ErrNotFound if none.
// Two objects under one name (two codecs, or a conflict pushed by hand)
// are an error, never a guess.
func findWAL(ctx context.Context, s storage.Store, name string) (walObject, error) {
	var found []walObject
	err := s.List(ctx, walKeyPrefix(name), func(oi storage.ObjectInfo) error {
		o, err := parseWALKey(oi.Key)
		if err != nil {
			return err
		}
		if o.Name == name {
			found = append(found, o)
		}
		return nil
	})
	if err != nil {
		return walObject{}, fmt.Errorf("list %s: %w", walKeyPrefix(name), err)
	}
	switch len(found) {
	case 0:
		return walObject{}, fmt.Errorf("%s: %w", name, storage.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return walObject{}, fmt.Errorf("%s: %d objects archived under one name (%s, %s, ...); remove the wrong one", name, len(found), found[0].Key, found[1].Key)
}
