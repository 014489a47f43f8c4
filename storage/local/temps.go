package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/walnut-pg/walnut/storage"
)

var _ storage.TempSweeper = (*Store)(nil)

// Temps walks the whole tree under root for the temp files of Puts and
// Creates that never finished (the process was killed, or the machine
// went down). It reads directories a batch of entries at a time and stats
// only temp files, so a wal/ of 100,000 segments costs its names once.
func (s *Store) Temps(ctx context.Context, fn func(storage.ObjectInfo) error) error {
	return s.walkTemps(ctx, s.root, "", fn)
}

func (s *Store) walkTemps(ctx context.Context, dir, dirKey string, fn func(storage.ObjectInfo) error) error {
	subdirs, err := s.readTemps(ctx, dir, dirKey, fn)
	if err != nil {
		return err
	}
	for _, sub := range subdirs {
		if err := s.walkTemps(ctx, filepath.Join(dir, sub), path.Join(dirKey, sub), fn); err != nil {
			return err
		}
	}
	return nil
}

// readTemps hands fn the temp files directly in dir and returns its
// subdirectories.
func (s *Store) readTemps(ctx context.Context, dir, dirKey string, fn func(storage.ObjectInfo) error) ([]string, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		// No archive yet, or a directory a Delete just emptied away.
		return nil, nil
	}
	if err != nil {
		return nil, translateError("list temp files in", dirKey, err)
	}
	defer f.Close()
	var subdirs []string
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("list temp files: %w", err)
		}
		entries, err := f.ReadDir(1024)
		for _, e := range entries {
			name := e.Name()
			switch {
			case e.IsDir():
				subdirs = append(subdirs, name)
			case e.Type().IsRegular() && strings.HasPrefix(name, tempPrefix):
				fi, err := e.Info()
				if errors.Is(err, fs.ErrNotExist) {
					continue // its Put finished or failed meanwhile
				}
				if err != nil {
					return nil, translateError("list temp files in", dirKey, err)
				}
				if err := fn(storage.ObjectInfo{Key: path.Join(dirKey, name), Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
					return nil, err
				}
			}
		}
		if err == io.EOF {
			return subdirs, nil
		}
		if err != nil {
			return nil, translateError("list temp files in", dirKey, err)
		}
	}
}

// RemoveTemp removes a temp file last written at or before notAfter. A
// Put writes its temp file from start to end without pause, so one not
// written to for the whole grace period belongs to a process that is
// gone. Even one still alive loses nothing by it: its rename or link
// then fails, and so does its Put.
func (s *Store) RemoveTemp(ctx context.Context, key string, notAfter time.Time) (bool, error) {
	dirKey, name := path.Split(key)
	dirKey = strings.TrimSuffix(dirKey, "/")
	if storage.KeyProblem(key) != "" || !strings.HasPrefix(name, tempPrefix) || strings.Contains(name, `\`) || (dirKey != "" && keyProblem(dirKey) != "") {
		return false, storage.InvalidKey(key, "is not a temp file's")
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("remove temp file %s: %w", key, err)
	}
	p := filepath.Join(s.root, filepath.FromSlash(key))
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, translateError("remove temp file", key, err)
	case !fi.Mode().IsRegular():
		return false, storage.Permanent(fmt.Errorf("remove temp file %s: not a regular file (%s)", key, fi.Mode().Type()))
	case fi.ModTime().After(notAfter):
		return false, nil
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, translateError("remove temp file", key, err)
	}
	dir := filepath.Dir(p)
	if err := syncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true, translateError("remove temp file", key, err)
	}
	// As Delete: a backup's directory left empty goes too.
	for ; dir != s.root && len(dir) > len(s.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return true, nil
}
