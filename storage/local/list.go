package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/walnut-pg/walnut/storage"
)

// List reads only the directory holding prefix's last "/" and what lies
// below it, so finding one WAL segment by "wal/<name>-" costs one directory
// read, not a walk of the archive.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	dirKey, partial := "", prefix
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dirKey, partial = prefix[:i], prefix[i+1:]
		if keyProblem(dirKey) != "" {
			// No valid key starts with it, and it must not be joined to root.
			return nil
		}
	}
	l := lister{ctx: ctx, prefix: prefix, fn: fn}
	return l.walk(filepath.Join(s.root, filepath.FromSlash(dirKey)), dirKey, partial)
}

type lister struct {
	ctx    context.Context
	prefix string
	fn     func(storage.ObjectInfo) error
}

// entry is a directory entry with the name it sorts by among its siblings:
// the keys under directory "a" all start with "a/", so "a" sorts as "a/",
// which puts "a-b" before them and "a0" after, as in a flat key space.
type entry struct {
	de      fs.DirEntry
	sortKey string
}

// walk calls fn for the objects in dir (whose key is dirKey) and below, in
// ascending key order, skipping names in dir that do not start with
// partial.
func (l *lister) walk(dir, dirKey, partial string) error {
	if err := l.ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", l.prefix, err)
	}
	entries, err := readDir(dir, partial)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return listError(l.prefix, err)
	}
	for _, e := range entries {
		key := e.de.Name()
		if dirKey != "" {
			key = dirKey + "/" + key
		}
		path := filepath.Join(dir, e.de.Name())
		if e.de.IsDir() {
			if err := l.walk(path, key, ""); err != nil {
				return err
			}
			continue
		}
		if err := l.ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", l.prefix, err)
		}
		fi, err := e.de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since the directory was read
		}
		if err != nil {
			return listError(l.prefix, err)
		}
		if err := l.fn(storage.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// readDir returns the directories and regular files in dir whose names
// start with partial, sorted as keys, leaving out uploads in progress and
// anything Put cannot have made (symbolic links, sockets, invalid names).
// Filtering before sorting keeps a lookup in a large wal/ cheap.
func readDir(dir, partial string) ([]entry, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	des, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	var out []entry
	for _, de := range des {
		name := de.Name()
		if !strings.HasPrefix(name, partial) || keyProblem(name) != "" {
			continue
		}
		switch {
		case de.IsDir():
			out = append(out, entry{de: de, sortKey: name + "/"})
		case de.Type().IsRegular():
			out = append(out, entry{de: de, sortKey: name})
		}
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.sortKey, b.sortKey) })
	return out, nil
}

func listError(prefix string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return storage.Permanent(fmt.Errorf("list %s: %w", prefix, err))
	}
	return fmt.Errorf("list %s: %w", prefix, err)
}
