package local

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// entry is a directory entry as the listing keeps it while it sorts: the
// name and whether it is a directory, nothing more (a wal/ of 100,000
// segments is listed whole before the first key can be handed over, and
// os.DirEntry values cost several times this).
type entry struct {
	name string
	dir  bool
}

// compareEntries orders entries as their keys sort: the keys under
// directory "a" all start with "a/", so "a" sorts as "a/", which puts "a-b"
// before them and "a0" after, as in a flat key space.
func compareEntries(a, b entry) int {
	n := min(len(a.name), len(b.name))
	if c := strings.Compare(a.name[:n], b.name[:n]); c != 0 {
		return c
	}
	return next(a, n) - next(b, n)
}

// next is the byte of e's sort key at i: past the name, '/' for a
// directory and -1 (the end) for a file.
func next(e entry, i int) int {
	switch {
	case i < len(e.name):
		return int(e.name[i])
	case e.dir && i == len(e.name):
		return '/'
	}
	return -1
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
		key := e.name
		if dirKey != "" {
			key = dirKey + "/" + key
		}
		path := filepath.Join(dir, e.name)
		if e.dir {
			if err := l.walk(path, key, ""); err != nil {
				return err
			}
			continue
		}
		if err := l.ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", l.prefix, err)
		}
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since the directory was read
		}
		if err == nil && !fi.Mode().IsRegular() {
			continue // replaced since the directory was read
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
	defer d.Close()
	var out []entry
	for {
		// In batches, so that only the compact entries of the whole
		// directory are held at once.
		des, err := d.ReadDir(1024)
		for _, de := range des {
			name := de.Name()
			if !strings.HasPrefix(name, partial) || keyProblem(name) != "" {
				continue
			}
			switch {
			case de.IsDir():
				out = append(out, entry{name: name, dir: true})
			case de.Type().IsRegular():
				out = append(out, entry{name: name})
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, compareEntries)
	return out, nil
}

func listError(prefix string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return storage.Permanent(fmt.Errorf("list %s: %w", prefix, err))
	}
	return fmt.Errorf("list %s: %w", prefix, err)
}
