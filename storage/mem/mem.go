// Package mem is an in-memory storage.Store for tests.
package mem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/walnut-pg/walnut/storage"
)

// Store holds objects in memory; it is safe for concurrent use.
type Store struct {
	mu      sync.RWMutex
	objects map[string]object
	puts    uint64 // numbers the versions Put stores
}

// object is never modified once stored, so readers share its bytes.
type object struct {
	data    []byte
	modTime time.Time
	version string
}

var (
	_ storage.Store       = (*Store)(nil)
	_ storage.RangeReader = (*Store)(nil)
	_ storage.Creator     = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{objects: make(map[string]object)}
}

// Put reads all of r before storing anything, so a failed or cancelled Put
// leaves the previous object, if any, in place.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.store(ctx, "put", key, r, size, false)
}

// Create decides under the lock that stores, so of Creates racing for a
// key exactly one stores it.
func (s *Store) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.store(ctx, "create", key, r, size, true)
}

func (s *Store) store(ctx context.Context, op, key string, r io.Reader, size int64, create bool) error {
	if key == "" {
		return storage.Permanent(fmt.Errorf("%s: empty key", op))
	}
	data, err := io.ReadAll(storage.ContextReader(ctx, r))
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	if size >= 0 && int64(len(data)) != size {
		return fmt.Errorf("%s %s: read %d bytes, want %d", op, key, len(data), size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[key]; ok && create {
		return storage.Exists(op, key)
	}
	s.puts++
	s.objects[key] = object{data: data, modTime: time.Now(), version: strconv.FormatUint(s.puts, 10)}
	return nil
}

func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	obj, err := s.lookup(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(obj.data)), nil
}

func (s *Store) GetRange(ctx context.Context, key string, offset int64, version string) (*storage.Range, error) {
	obj, err := s.lookup(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	switch {
	case version != "" && obj.version != version:
		return nil, storage.Changed("get", key, "overwritten")
	case offset < 0 || offset > int64(len(obj.data)):
		return nil, storage.Permanent(fmt.Errorf("get %s: offset %d outside the object's %d bytes", key, offset, len(obj.data)))
	}
	return &storage.Range{Body: io.NopCloser(bytes.NewReader(obj.data[offset:])), Version: obj.version, Size: int64(len(obj.data))}, nil
}

func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	obj, err := s.lookup(ctx, "stat", key)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	return storage.ObjectInfo{Key: key, Size: int64(len(obj.data)), ModTime: obj.modTime}, nil
}

func (s *Store) lookup(ctx context.Context, op, key string) (object, error) {
	if err := ctx.Err(); err != nil {
		return object{}, fmt.Errorf("%s %s: %w", op, key, err)
	}
	s.mu.RLock()
	obj, ok := s.objects[key]
	s.mu.RUnlock()
	if !ok {
		return object{}, fmt.Errorf("%s %s: %w", op, key, storage.ErrNotFound)
	}
	return obj, nil
}

// List works on a snapshot taken at the start, and calls fn without holding
// the lock so that fn may use the store.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	var infos []storage.ObjectInfo
	s.mu.RLock()
	for k, obj := range s.objects {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, storage.ObjectInfo{Key: k, Size: int64(len(obj.data)), ModTime: obj.modTime})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(infos, func(a, b storage.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	s.mu.Lock()
	delete(s.objects, key)
	s.mu.Unlock()
	return nil
}

func (s *Store) Close() error { return nil }
