package wal

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

const partialSuffix = ".partial"

// replacePartial stores the .partial file at o.Path as the one object of
// its name, replacing what an earlier upload of the same segment in
// progress stored. A .partial is the one name whose content may change:
// wal-receive uploads the segment it is writing again and again, each
// upload holding more of it. The new object is stored before the older
// ones are deleted, so the archive never holds less than it did; a
// failure between the two leaves two objects, of which wal-fetch takes
// the newest. wal-push keeps the strict rule for .partial files too.
func replacePartial(ctx context.Context, o PushOptions) (PushResult, error) {
	name := filepath.Base(o.Path)
	if !pgcontrol.IsPartialFileName(name) {
		return PushResult{}, fmt.Errorf("%s: not a .partial file name", o.Path)
	}
	res, digest, err := prepare(ctx, o)
	if err != nil {
		return res, err
	}
	existing, err := archive.ListWAL(ctx, o.Store, name)
	if err != nil {
		return res, err
	}
	var stale []string
	for _, e := range existing {
		if e.Digest == digest && !res.AlreadyStored {
			res.Key, res.AlreadyStored = e.Key, true
			continue
		}
		stale = append(stale, e.Key)
	}
	if !res.AlreadyStored {
		if res, err = put(ctx, o, res, digest); err != nil {
			return res, err
		}
	}
	for _, k := range stale {
		if err := o.Store.Delete(ctx, k); err != nil {
			return res, fmt.Errorf("delete the older %s: %w", k, err)
		}
	}
	return res, nil
}

// deletePartials removes the .partial objects of segment name once the
// whole segment is stored: they hold nothing it does not.
func deletePartials(ctx context.Context, s storage.Store, name string) error {
	objs, err := archive.ListWAL(ctx, s, name+partialSuffix)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		if err := s.Delete(ctx, obj.Key); err != nil {
			return fmt.Errorf("delete %s: %w", obj.Key, err)
		}
	}
	return nil
}

// findPartial is wal-fetch's answer for a segment that is not archived
// whole: the newest .partial of it, as wal-receive leaves the segment it
// was writing, provided nothing later exists on its timeline (a later
// segment means this one was completed elsewhere or lost, and its partial
// content would end recovery early). It returns an error that errors.Is
// storage.ErrNotFound only when the store says there is no such partial.
func findPartial(ctx context.Context, s storage.Store, name string) (archive.WALObject, error) {
	notFound := fmt.Errorf("%s: %w", name, storage.ErrNotFound)
	if !pgcontrol.IsWALFileName(name) {
		return archive.WALObject{}, notFound
	}
	objs, err := archive.ListWAL(ctx, s, name+partialSuffix)
	if err != nil {
		return archive.WALObject{}, err
	}
	if len(objs) == 0 {
		return archive.WALObject{}, notFound
	}
	later, err := laterOnTimeline(ctx, s, name)
	if err != nil {
		return archive.WALObject{}, err
	}
	if later != "" {
		return archive.WALObject{}, notFound
	}
	newest := objs[0]
	for _, o := range objs[1:] {
		if o.ModTime.After(newest.ModTime) {
			newest = o
		}
	}
	return newest, nil
}

// laterOnTimeline returns the name of an archived segment (whole or
// partial) after name on its timeline, or "". It lists the segments that
// share name's timeline and xlogid and the next xlogid, not the whole
// timeline: a later one beyond those means a gap anyway, and wal-fetch
// must stay cheap in standby mode, where PostgreSQL asks every few seconds.
func laterOnTimeline(ctx context.Context, s storage.Store, name string) (string, error) {
	var xlogid uint32
	if _, err := fmt.Sscanf(name[8:16], "%08X", &xlogid); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	prefixes := []string{name[:16]}
	if xlogid != ^uint32(0) {
		prefixes = append(prefixes, fmt.Sprintf("%s%08X", name[:8], xlogid+1))
	}
	var later string
	for _, p := range prefixes {
		err := s.List(ctx, archive.WALDir+p, func(oi storage.ObjectInfo) error {
			o, err := archive.ParseWALKey(oi.Key)
			if err != nil {
				return err
			}
			seg, _ := strings.CutSuffix(o.Name, partialSuffix)
			if pgcontrol.IsWALFileName(seg) && seg > name && later == "" {
				later = o.Name
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("list %s%s: %w", archive.WALDir, p, err)
		}
		if later != "" {
			break
		}
	}
	return later, nil
}
