package storage

import (
	"context"
	"fmt"
	"time"
)

// TempSweeper is a Store whose uploads go through temp files of its own
// beside the objects (file://). A Put killed midway leaves its temp file
// behind, and since no List shows it, only this interface finds it again.
// Object stores have nothing of the kind to sweep: an upload that never
// completed is never visible, and the stores expire its parts
// themselves.
type TempSweeper interface {
	// Temps calls fn for every temp file the store holds, with Key its
	// "/"-separated path under the store's prefix, Size, and ModTime the
	// last time anything was written to it.
	Temps(ctx context.Context, fn func(ObjectInfo) error) error
	// RemoveTemp removes the temp file key (as Temps gave it) unless it
	// was written to after notAfter, and reports whether it removed it:
	// a temp file still being written, or already gone, stays or is
	// skipped without an error.
	RemoveTemp(ctx context.Context, key string, notAfter time.Time) (bool, error)
}

// Temps lists s's temp files; a store without any (every object store)
// lists none.
func Temps(ctx context.Context, s Store, fn func(ObjectInfo) error) error {
	if ts, ok := s.(TempSweeper); ok {
		return ts.Temps(ctx, fn)
	}
	return nil
}

// RemoveTemp removes a temp file that Temps listed from s.
func RemoveTemp(ctx context.Context, s Store, key string, notAfter time.Time) (bool, error) {
	ts, ok := s.(TempSweeper)
	if !ok {
		return false, Permanent(fmt.Errorf("remove temp file %s: %T keeps no temp files", key, s))
	}
	return ts.RemoveTemp(ctx, key, notAfter)
}
