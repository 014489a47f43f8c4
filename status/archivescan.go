package status

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// sentinelReaders bounds the sentinels read at once: each is one small
// GET, and on a cloud store their latency, not their size, is the cost.
const sentinelReaders = 8

// errNotAnArchive marks a prefix without walnut.json: a fault, never an
// empty archive.
var errNotAnArchive = archive.ErrNotAnArchive

// scanArchive fills r from walnut.json, one listing of the whole prefix
// and the sentinels it found. The listing is streamed: only sums, the
// newest segment and the sentinel names are kept, so memory does not grow
// with the number of WAL objects. The error is the store's (unreachable,
// refused) or errNotAnArchive.
func scanArchive(ctx context.Context, s storage.Store, now time.Time, r *ArchiveReport) error {
	id, err := archive.ReadIdentity(ctx, s)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errNotAnArchive
	case err != nil:
		return fmt.Errorf("read %s: %w", archive.IdentityKey, err)
	}
	r.SystemIdentifier = &id.SystemIdentifier

	var (
		names       []string
		newest      string
		newestMTime time.Time
	)
	err = s.List(ctx, "", func(oi storage.ObjectInfo) error {
		r.Objects++
		r.TotalBytes += oi.Size
		switch {
		case strings.HasPrefix(oi.Key, archive.WALDir):
			r.WALBytes += oi.Size
			r.WAL.Objects++
			o, err := archive.ParseWALKey(oi.Key)
			if err != nil || !pgcontrol.IsWALFileName(o.Name) {
				return nil // history, backup history and partial files, or strays
			}
			r.WAL.Segments++
			// Fixed-width upper-case hex: the greatest name is the
			// highest timeline, then the furthest position.
			if o.Name > newest {
				newest, newestMTime = o.Name, oi.ModTime
			}
		case strings.HasPrefix(oi.Key, archive.BackupsDir):
			r.BackupsBytes += oi.Size
			if n := archive.BackupNameFromSentinel(oi.Key); n != "" {
				names = append(names, n)
			}
		default:
			r.OtherBytes += oi.Size
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list the archive: %w", err)
	}
	if newest != "" {
		r.WAL.NewestSegment = &newest
		r.WAL.NewestSegmentStoredAt = &newestMTime
		age := now.Sub(newestMTime).Seconds()
		r.WAL.NewestSegmentAgeSeconds = &age
	}

	sentinels, err := readSentinels(ctx, s, names)
	if err != nil {
		return err
	}
	b := &r.Backups
	for _, sn := range sentinels {
		b.Count++
		if sn.Permanent {
			b.Permanent++
		}
		b.StoredBytes += sn.StoredSize
		b.ExpandedBytes += sn.ExpandedSize
	}
	if len(sentinels) > 0 {
		sn := sentinels[len(sentinels)-1]
		b.Newest = &BackupReport{
			Name:          sn.Name,
			FinishTime:    sn.FinishTime,
			AgeSeconds:    now.Sub(sn.FinishTime).Seconds(),
			StoredBytes:   sn.StoredSize,
			ExpandedBytes: sn.ExpandedSize,
			Permanent:     sn.Permanent,
		}
	}
	return nil
}

// readSentinels reads the named sentinels a few at once (archive's
// ReadSentinels reads them one after another, which on a cloud store
// costs a round trip per backup), oldest first by finish time. One
// deleted since the listing is left out, as retention does.
func readSentinels(ctx context.Context, s storage.Store, names []string) ([]*archive.Sentinel, error) {
	out := make([]*archive.Sentinel, len(names))
	g, gctx := archive.NewGroup(ctx)
	var mu sync.Mutex
	next := 0
	for range min(sentinelReaders, len(names)) {
		g.Go(func() error {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(names) {
					return nil
				}
				sn, err := archive.ReadSentinel(gctx, s, names[i])
				if errors.Is(err, storage.ErrNotFound) {
					continue
				}
				if err != nil {
					return fmt.Errorf("read %s: %w", archive.SentinelKey(names[i]), err)
				}
				out[i] = sn
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	kept := out[:0]
	for _, sn := range out {
		if sn != nil {
			kept = append(kept, sn)
		}
	}
	archive.SortByFinish(kept)
	return kept, nil
}
