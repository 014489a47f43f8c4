package wal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/walnut-pg/walnut/archive"
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
		if err := archive.CheckFetchedWAL(o.Name, n, head.b); err != nil {
			return fmt.Errorf("fetch %s: %v", obj.Key, err)
		}
		return nil
	})
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
