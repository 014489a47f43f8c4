package local

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/walnut-pg/walnut/storage"
)

// translateError maps a filesystem error on key to walnut's terms. Only a
// missing path is ErrNotFound: wal-fetch tells PostgreSQL "not in the
// archive" on it, which ends recovery, so anything else must stay an error.
// A path component that is a file, or a directory where the object would
// be, also means the object does not exist, as it would on an object store.
func translateError(op, key string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("%s %s: %w (%w)", op, key, storage.ErrNotFound, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		// Another attempt will meet the same permissions.
		return storage.Permanent(fmt.Errorf("%s %s: %w", op, key, err))
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// writeError is translateError for Put and Create (op), where a missing or
// mistyped path is no "not found" but a failure to store.
func writeError(op, key string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.ENOTEMPTY):
		// Unlike an object store, a directory tree cannot hold both "a" and
		// "a/b".
		return storage.Permanent(fmt.Errorf("%s %s: the local backend cannot store both a key and keys under it: %w", op, key, err))
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return storage.Permanent(fmt.Errorf("%s %s: %w", op, key, err))
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}
