package wal

import (
	"context"
	"fmt"
	"strings"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

const partialSuffix = ".partial"

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
