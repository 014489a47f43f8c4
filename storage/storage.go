// Package storage defines the one interface walnut sees of an object store.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is the one error every backend returns, wrapped or not, for a
// key that does not exist. Callers test it with errors.Is.
var ErrNotFound = errors.New("object not found")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string // full key, relative to the store's prefix, "/"-separated
	Size    int64
	ModTime time.Time
}

// Store is an object store under one prefix. Keys are "/"-separated and
// relative to that prefix.
type Store interface {
	// Put stores r under key, all or nothing: a reader never sees a partial
	// object. size < 0 means unknown: the backend streams it.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens key for reading; ErrNotFound if it does not exist.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes key; ErrNotFound if it does not exist.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List calls fn for every key starting with prefix (a plain string
	// prefix, not a directory), in ascending key order. An error from fn
	// stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	Close() error
}
