package wal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
)

// fetchWALE writes one of WAL-E's objects to Dest. Its key carries no
// digest, so what can be checked is checked before the rename: lzop's
// block checksums (and gpg's MDC) while decoding, then a segment's size
// and first page (its own address, for this very segment) and a history
// file's entries.
func fetchWALE(ctx context.Context, o FetchOptions, obj archive.WALObject) error {
	rc, err := archive.OpenDecoded(ctx, o.Store, obj.Key, o.Keyring)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", obj.Key, err)
	}
	defer rc.Close()
	return archive.WriteFileAtomic(o.Dest, func(w io.Writer) error {
		head := &headKeeper{max: 64 << 10}
		n, err := io.Copy(io.MultiWriter(w, head), rc)
		if err != nil {
			return fmt.Errorf("fetch %s: %w", obj.Key, err)
		}
		if err := checkFetched(o.Name, n, head.b); err != nil {
			return fmt.Errorf("fetch %s: %v", obj.Key, err)
		}
		return nil
	})
}

func checkFetched(name string, size int64, head []byte) error {
	switch {
	case pgcontrol.IsWALFileName(name) || pgcontrol.IsPartialFileName(name):
		_, err := checkSegment(name, size, head)
		return err
	case pgcontrol.IsHistoryFileName(name):
		if size > int64(len(head)) {
			return fmt.Errorf("%d bytes: too large for a history file", size)
		}
		return checkHistory(name, head)
	case pgcontrol.IsBackupHistoryFileName(name):
		if !bytes.HasPrefix(head, []byte("START WAL LOCATION: ")) {
			return fmt.Errorf("not a backup history file: it does not begin with START WAL LOCATION")
		}
	}
	return nil
}

// sameAsTwin decodes WAL-E's object under walnut's object's name and
// compares its digest with the one in walnut's key: the same file archived
// twice around the switch is fine, two different files are an error.
func sameAsTwin(ctx context.Context, o FetchOptions, obj archive.WALObject) error {
	rc, err := archive.OpenDecoded(ctx, o.Store, obj.Twin, o.Keyring)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", obj.Twin, err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return fmt.Errorf("fetch %s: %w", obj.Twin, err)
	}
	if got := hex.EncodeToString(h.Sum(nil))[:archive.DigestLen]; got != obj.Digest {
		return fmt.Errorf("%s: archived twice with different contents, by WAL-E (%s) and walnut (%s); remove the wrong one", o.Name, obj.Twin, obj.Key)
	}
	return nil
}

// headKeeper keeps the first max bytes written through it.
type headKeeper struct {
	b   []byte
	max int
}

func (h *headKeeper) Write(p []byte) (int, error) {
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
