package archive

import (
	"context"
	"fmt"

	"github.com/walnut-pg/walnut/storage"
)

// FindWAL returns the one object archived under name; ErrNotFound if none.
// Two objects under one name (two codecs, or a conflict pushed by hand)
// are an error, never a guess.
func FindWAL(ctx context.Context, s storage.Store, name string) (WALObject, error) {
	found, err := ListWAL(ctx, s, name)
	if err != nil {
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
		return nil, fmt.Errorf("list %s: %w", WALKeyPrefix(name), err)
	}
	return found, nil
}
