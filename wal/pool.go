package wal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
)

// PostgreSQL's archiver runs archive_command for one file at a time, so
// against a store with some latency archiving falls behind a busy server.
// wal-push --pool-size N stores the next N-1 files that are ready
// (archive_status/*.ready) alongside the one asked for, and leaves a marker
// for each under pg_wal/.walnut/archived. PostgreSQL's later call for such
// a file finds the marker, checks the file still has the recorded content
// and returns at once. walnut never touches archive_status: PostgreSQL
// renames .ready to .done itself once archive_command succeeds for that
// file.

// markerTTL bounds how long a marker is trusted and kept. A marker is
// normally used within seconds; an old one is removed, and the file it
// named is then checked against the archive again.
const markerTTL = time.Hour

// PoolOptions is what a pooled wal-push needs.
type PoolOptions struct {
	PushOptions
	// PoolSize is how many files are stored at once, the requested one
	// included; 1 stores only the requested one.
	PoolSize int
	// ArchiveID names the archive (its prefix URL). A marker left while
	// pushing to another archive is never trusted.
	ArchiveID string
}

// PoolResult says what a pooled wal-push did.
type PoolResult struct {
	PushResult
	// FromMarker: an earlier pooled wal-push stored this file; nothing
	// was asked of the store.
	FromMarker bool
	// Ahead are the other ready files stored this time; AheadFailed
	// counts those that failed (PostgreSQL's own call for them retries).
	Ahead       []PushResult
	AheadFailed int
}

// marker records that a file was stored in an archive, written only once
// the object was durable.
type marker struct {
	Name    string    `json:"name"`
	Digest  string    `json:"digest"`
	Size    int64     `json:"size"`
	Key     string    `json:"key"`
	Archive string    `json:"archive"` // archiveTag of the prefix
	Stored  time.Time `json:"stored"`
}

// archiveTag identifies an archive in markers without writing its URL to
// disk.
func archiveTag(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:8])
}

// PushPool stores o.Path like Push and, when o.Path is in a server's
// pg_wal and PoolSize > 1, also the next ready files. Only the requested
// file decides the error; a file that could not be stored ahead is
// logged and left for PostgreSQL's own call.
func PushPool(ctx context.Context, o PoolOptions) (PoolResult, error) {
	var res PoolResult
	walDir := filepath.Dir(o.Path)
	if !isPGWALDir(walDir) {
		r, err := Push(ctx, o.PushOptions)
		res.PushResult = r
		return res, err
	}
	markers := walStatePath(walDir, archivedDirName)
	tag := archiveTag(o.ArchiveID)
	name := filepath.Base(o.Path)
	if m, ok := useMarker(markers, name, o.Path, tag); ok {
		res.Key, res.Size, res.AlreadyStored, res.FromMarker = m.Key, m.Size, true, true
		return res, nil
	}

	var ahead []string
	if o.PoolSize > 1 {
		var err error
		ahead, err = readyFiles(walDir, name, markers, tag, o.PoolSize-1)
		if err != nil {
			o.Log.Warn("cannot list files ready to archive; storing only the one asked for", "err", err)
		}
	}
	aheadCtx, cancelAhead := context.WithCancel(ctx)
	defer cancelAhead()
	results := make([]*PushResult, len(ahead))
	var wg sync.WaitGroup
	for i, p := range ahead {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = pushAhead(aheadCtx, o, p, markers, tag)
		}()
	}

	r, err := Push(ctx, o.PushOptions)
	res.PushResult = r
	if err != nil {
		// PostgreSQL will call again for this file; do not keep it waiting.
		cancelAhead()
	}
	wg.Wait()
	for _, r := range results {
		if r == nil {
			res.AheadFailed++
		} else {
			res.Ahead = append(res.Ahead, *r)
		}
	}
	cleanMarkers(markers)
	if err == nil && recoveryOver(filepath.Dir(walDir)) {
		clearPrefetched(walStatePath(walDir, prefetchDirName))
	}
	return res, err
}

// pushAhead stores one ready file and leaves its marker; nil if it failed.
func pushAhead(ctx context.Context, o PoolOptions, path, markers, tag string) *PushResult {
	po := o.PushOptions
	po.Path = path
	r, err := Push(ctx, po)
	if err != nil {
		if ctx.Err() == nil {
			o.Log.Warn("could not store ahead; PostgreSQL's own call will", "path", path, "err", err)
		}
		return nil
	}
	// The key carries the digest of what was stored.
	obj, err := archive.ParseWALKey(r.Key)
	if err != nil {
		o.Log.Warn("stored ahead, but no marker", "key", r.Key, "err", err)
		return &r
	}
	m := marker{Name: filepath.Base(path), Digest: obj.Digest, Size: r.Size, Key: r.Key, Archive: tag, Stored: time.Now().UTC()}
	if err := writeMarker(markers, m); err != nil {
		o.Log.Warn("stored ahead, but could not leave a marker; PostgreSQL's call will check the archive", "key", r.Key, "err", err)
	}
	if r.AlreadyStored {
		o.Log.Debug("already archived ahead", "key", r.Key)
	} else {
		o.Log.Info("archived ahead", "key", r.Key, "bytes", r.Size, "stored_bytes", r.Stored)
	}
	return &r
}

// useMarker returns the marker for name if one says path's present
// content is stored in this archive, and removes the marker either way: a
// marker is used once. A segment PostgreSQL recycled or rewrote since has
// another digest, so a marker can never vouch for other content.
func useMarker(dir, name, path, tag string) (marker, bool) {
	p := filepath.Join(dir, name)
	m, err := readMarker(p)
	if err != nil {
		return m, false
	}
	defer os.Remove(p)
	if m.Name != name || m.Archive != tag || time.Since(m.Stored) > markerTTL {
		return m, false
	}
	digest, size, err := archive.DigestWALFile(path)
	if err != nil || digest != m.Digest || size != m.Size {
		return m, false
	}
	return m, true
}

func readMarker(p string) (marker, error) {
	var m marker
	b, err := os.ReadFile(p)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", p, err)
	}
	return m, nil
}

func writeMarker(dir string, m marker) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return archive.WriteFileAtomic(filepath.Join(dir, m.Name), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// hasMarker reports whether a fresh marker for name in this archive exists,
// so a pooled push does not store it again while PostgreSQL has yet to ask.
func hasMarker(dir, name, tag string) bool {
	m, err := readMarker(filepath.Join(dir, name))
	return err == nil && m.Archive == tag && time.Since(m.Stored) <= markerTTL
}

// cleanMarkers removes markers and leftover temporary files older than
// markerTTL, e.g. for files PostgreSQL never asked for after a crash.
func cleanMarkers(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > markerTTL {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// readyFiles returns up to n paths of files PostgreSQL has marked ready to
// archive, other than name and those with a fresh marker, in the order
// PostgreSQL's archiver takes them: timeline history files first, then by
// name (a segment, its .backup and .partial files sort in WAL order).
func readyFiles(walDir, name, markers, tag string, n int) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(walDir, "archive_status"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		f, ok := strings.CutSuffix(e.Name(), ".ready")
		if !ok || f == name || !pgcontrol.IsArchivableName(f) {
			continue
		}
		names = append(names, f)
	}
	slices.SortFunc(names, func(a, b string) int {
		ha, hb := pgcontrol.IsHistoryFileName(a), pgcontrol.IsHistoryFileName(b)
		switch {
		case ha && !hb:
			return -1
		case hb && !ha:
			return 1
		}
		return strings.Compare(a, b)
	})
	var out []string
	for _, f := range names {
		if len(out) == n {
			break
		}
		if hasMarker(markers, f, tag) {
			continue
		}
		p := filepath.Join(walDir, f)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// recoveryOver reports whether dataDir is a data directory without the
// signal files that start recovery. wal-push runs during recovery only on
// a standby with archive_mode=always, which may still be using prefetched
// segments.
func recoveryOver(dataDir string) bool {
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		return false
	}
	for _, f := range []string{"standby.signal", "recovery.signal"} {
		if _, err := os.Stat(filepath.Join(dataDir, f)); err == nil {
			return false
		}
	}
	return true
}
