package wal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/storage"
)

// FetchOptions is what wal-fetch needs.
type FetchOptions struct {
	Store   storage.Store
	Name    string          // %f
	Dest    string          // %p, relative to the working directory PostgreSQL gives
	Keyring *crypto.Keyring // decrypts .pgp objects; nil: none configured
	Log     *slog.Logger
	// WholeOnly refuses wal-receive's partial segments: a prefetched
	// copy would outlive the segment's completion.
	WholeOnly bool
}

// staleTempAge is how old a temporary file beside Dest must be before a
// wal-fetch takes it for a dead one's and removes it.
const staleTempAge = time.Minute

// Fetch writes the archived file name to Dest, atomically: Dest appears
// whole and checked or not at all. An encrypted object is verified (its
// MDC, at the end of the stream) before Dest is renamed into place. A name not in the archive gives an error
// that errors.Is storage.ErrNotFound, and only then.
func Fetch(ctx context.Context, o FetchOptions) error {
	archive.RemoveStaleTemps(filepath.Dir(o.Dest), staleTempAge)
	obj, err := archive.FindWALAny(ctx, o.Store, o.Name)
	if errors.Is(err, storage.ErrNotFound) && !o.WholeOnly {
		// A restore to the end of the archive includes what wal-receive
		// stored of the segment it was writing.
		if obj, err = findPartial(ctx, o.Store, o.Name); err == nil && o.Log != nil {
			o.Log.Info("serving the partial segment: nothing later is archived on its timeline", "key", obj.Key)
		}
	}
	if errors.Is(err, storage.ErrNotFound) {
		// Recovery ends on "not in the archive": say it only of an archive.
		if rerr := archive.Require(ctx, o.Store); rerr != nil {
			return rerr
		}
	}
	if err != nil {
		return err
	}
	if obj.WALE {
		return fetchWALE(ctx, o, obj)
	}
	if obj.Twin != "" {
		if err := sameAsTwin(ctx, o, obj); err != nil {
			return err
		}
	}
	rc, err := archive.OpenDecoded(ctx, o.Store, obj.Key, o.Keyring)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", obj.Key, err)
	}
	defer rc.Close()
	return archive.WriteFileAtomic(o.Dest, func(w io.Writer) error {
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(w, h), rc); err != nil {
			return fmt.Errorf("fetch %s: %w", obj.Key, err)
		}
		if got := hex.EncodeToString(h.Sum(nil))[:archive.DigestLen]; got != obj.Digest {
			return fmt.Errorf("fetch %s: content digest %s does not match the key's; the object is corrupt", obj.Key, got)
		}
		return nil
	})
}
