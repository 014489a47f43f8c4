package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrExists is the failure of a Create whose key already holds an object.
// It is always Permanent: another attempt meets the same object.
var ErrExists = errors.New("object already exists")

// Creator is a Store that can store an object only if its key holds none,
// with the store's own conditional write, so that of two writers racing
// for one key exactly one wins. Every backend implements it; walnut.json,
// which says whose archive a prefix is, is created with it.
type Creator interface {
	// Create stores r under key, all or nothing as Put does, if no
	// object exists under key; otherwise it stores nothing and fails
	// with an error that errors.Is ErrExists. A Create whose answer was
	// lost and that is tried again meets its own object as ErrExists:
	// the caller reads the object to tell.
	Create(ctx context.Context, key string, r io.Reader, size int64) error
}

// Exists returns the error for key being taken, Permanent and matching
// ErrExists.
func Exists(op, key string) error {
	return Permanent(fmt.Errorf("%s %s: %w", op, key, ErrExists))
}

// Create stores r under key if no object exists there, through s's
// Creator. A store that has none fails Permanent: a Put in its place would
// be a read-then-write that two writers can both win.
func Create(ctx context.Context, s Store, key string, r io.Reader, size int64) error {
	c, ok := s.(Creator)
	if !ok {
		return noCreate(s, key)
	}
	return c.Create(ctx, key, r, size)
}

// ErrNoCreate is the failure of Create on a store that cannot create
// conditionally.
var ErrNoCreate = errors.New("store cannot create an object conditionally")

func noCreate(s Store, key string) error {
	return Permanent(fmt.Errorf("create %s: %T: %w", key, s, ErrNoCreate))
}
