package archive

import (
	"context"
	"errors"
	"fmt"

	"github.com/walnut-pg/walnut/storage"
)

// FindWAL returns the one object archived under name; ErrNotFound if none.
// Two objects under one name (two codecs, or a conflict pushed by hand)
// are an error, never a guess.
func FindWAL(ctx context.Context, s storage.Store, name string) (WALObject, error) {
	found, err := ListWAL(ctx, s, name)
	if err != nil {
		// Stores name the operation and the prefix in their errors, and
		// ParseWALKey names the key.
		return WALObject{}, err
	}
	switch len(found) {
	case 0:
		return WALObject{}, fmt.Errorf("%s: %w", name, storage.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return WALObject{}, fmt.Errorf("%s: %d objects archived under one name (%s, %s, ...); remove the wrong one", name, len(found), found[0].Key, found[1].Key)
}

// FindWALAny is FindWAL over both layouts a restore reads: walnut's wal/
// and WAL-E's wal_005/. When both hold the name (a segment archived again
// after archive_command moved to walnut), walnut's object comes back with
// WAL-E's key as Twin: the reader must compare the two contents, since two
// different files under one name are an error, never a guess.
func FindWALAny(ctx context.Context, s storage.Store, name string) (WALObject, error) {
	o, err := FindWAL(ctx, s, name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return o, err
	}
	w, werr := findWALE(ctx, s, name)
	switch {
	case werr != nil && !errors.Is(werr, storage.ErrNotFound):
		return WALObject{}, werr
	case err == nil && werr == nil:
		o.Twin = w.Key
		return o, nil
	case err == nil:
		return o, nil
	case werr == nil:
		return w, nil
	}
	return WALObject{}, err
}

// ListWAL returns every object archived under name, each with its
// modification time; none is not an error.
func ListWAL(ctx context.Context, s storage.Store, name string) ([]WALObject, error) {
	var found []WALObject
	err := s.List(ctx, WALKeyPrefix(name), func(oi storage.ObjectInfo) error {
		o, err := ParseWALKey(oi.Key)
		if err != nil {
			return err
		}
		if o.Name == name {
			o.ModTime = oi.ModTime
			found = append(found, o)
		}
		return nil
	})
	if err != nil {
		return nil, err // stores name the operation and the prefix
	}
	return found, nil
}
