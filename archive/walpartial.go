package archive

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// ReplacePartialWAL stores the .partial file at o.Path as the one object
// of its name, replacing what an earlier upload of the same segment in
// progress stored. A .partial is the one name whose content may change:
// wal-receive uploads the segment it is writing again and again, each
// upload holding more of it. The new object is stored before the older
// ones are deleted, so the archive never holds less than it did; a
// failure between the two leaves two objects, of which wal-fetch takes
// the newest. PutWAL keeps the strict rule for .partial files too.
func ReplacePartialWAL(ctx context.Context, o PutWALOptions) (PutWALResult, error) {
	name := filepath.Base(o.Path)
	if !pgcontrol.IsPartialFileName(name) {
		return PutWALResult{}, fmt.Errorf("%s: not a .partial file name", o.Path)
	}
	res, digest, err := prepareWAL(ctx, o)
	if err != nil {
		return res, err
	}
	existing, err := ListWAL(ctx, o.Store, name)
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
		if res, err = putWAL(ctx, o, res, digest); err != nil {
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

// DeletePartialWALs removes the .partial objects of segment name once the
// whole segment is stored: they hold nothing it does not.
func DeletePartialWALs(ctx context.Context, s storage.Store, name string) error {
	objs, err := ListWAL(ctx, s, name+".partial")
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
