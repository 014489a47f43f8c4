// Package local is the file:// backend: one file per object under a root
// directory.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/walnut-pg/walnut/storage"
)

// The archive is private data written by archive_command as the postgres
// user; group read lets a backup operator's group read it, and no one else.
const (
	dirMode  = 0o750
	fileMode = 0o640
)

// tempPrefix starts the name of every file a Put is still writing. Keys may
// not have a segment starting with it, so List can tell the two apart.
const tempPrefix = ".tmp-"

// Store keeps each object in the file named by its key under root.
type Store struct {
	root string
}

var (
	_ storage.Store       = (*Store)(nil)
	_ storage.RangeReader = (*Store)(nil)
	_ storage.Creator     = (*Store)(nil)
)

// New returns a store under root, which must be absolute. root need not
// exist: the first Put creates it, so a read-only command aimed at a wrong
// path finds an empty archive instead of leaving directories behind.
func New(root string) (*Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("local storage root %q is not an absolute path", root)
	}
	return &Store{root: filepath.Clean(root)}, nil
}

// Root returns the directory the store keeps its objects in.
func (s *Store) Root() string { return s.root }

func (s *Store) path(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put writes a temp file beside the target and renames it into place, with
// fsyncs around the rename, so a crash or error at any point leaves either
// the old object or the new one, never part of one.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.store(ctx, "put", key, r, size, os.Rename)
}

// Create writes the temp file as Put does, then hard-links it to the final
// name: link(2) fails with EEXIST when the name is taken, and two Creates
// cannot both succeed, where a rename would replace the other's object.
// The filesystem must support hard links (every local Linux filesystem and
// NFS do); one that does not fails with the kernel's error. A crash after
// the link leaves the temp file beside the object, for delete garbage.
func (s *Store) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.store(ctx, "create", key, r, size, func(tmp, path string) error {
		if err := os.Link(tmp, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				if fi, serr := os.Lstat(path); serr == nil && fi.IsDir() {
					return &fs.PathError{Op: "link", Path: path, Err: syscall.EISDIR}
				}
				return storage.Exists("create", key)
			}
			return err
		}
		// The object is in place under its name; the temp name is only a
		// second link to it, and a failure to remove it changes nothing.
		os.Remove(tmp)
		return nil
	})
}

// store writes r to a temp file in key's directory, syncs it, and hands it
// to place, which gives it its final name.
func (s *Store) store(ctx context.Context, op, key string, r io.Reader, size int64, place func(tmp, path string) error) (err error) {
	path, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	dir := filepath.Dir(path)
	f, err := s.createTemp(dir)
	if err != nil {
		return writeError(op, key, err)
	}
	placed := false
	defer func() {
		if err != nil {
			f.Close()
		}
		if !placed {
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(fileMode); err != nil {
		return writeError(op, key, err)
	}
	n, err := io.Copy(f, storage.ContextReader(ctx, r))
	if err != nil {
		return writeError(op, key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%s %s: read %d bytes, want %d", op, key, n, size)
	}
	if err := f.Sync(); err != nil {
		return writeError(op, key, err)
	}
	if err := f.Close(); err != nil {
		return writeError(op, key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	if err := place(f.Name(), path); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return err
		}
		return writeError(op, key, err)
	}
	placed = true
	// The object is in place; only its durability is in question now.
	if err := syncDir(dir); err != nil {
		return writeError(op, key, err)
	}
	return nil
}

// createTemp makes dir if needed and a temp file in it. A concurrent Delete
// may remove dir, once empty, between the two steps; trying again then is
// enough.
func (s *Store) createTemp(dir string) (*os.File, error) {
	for i := 0; ; i++ {
		if err := mkdirSynced(dir); err != nil {
			return nil, err
		}
		f, err := os.CreateTemp(dir, tempPrefix+"*")
		if err == nil {
			if err := inheritOwner(f.Name(), dir); err != nil {
				f.Close()
				os.Remove(f.Name())
				return nil, err
			}
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || i == 2 {
			return nil, err
		}
	}
}

// mkdirSynced is os.MkdirAll that also fsyncs the parent of each directory
// it makes, so a new directory survives a crash along with what is put in
// it.
func mkdirSynced(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirSynced(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := inheritOwner(dir, parent); err != nil {
		return err
	}
	return syncDir(parent)
}

// inheritOwner gives path the owner of dir when walnut runs as root. An
// archive is written by archive_command as the postgres user; a backup-push
// run as root must not leave directories or objects (walnut.json first of
// all) that user can no longer read or write into, or archiving stops.
func inheritOwner(path, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	return os.Lchown(path, int(st.Uid), int(st.Gid))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rng, err := s.GetRange(ctx, key, 0, "")
	if err != nil {
		return nil, err
	}
	return rng.Body, nil
}

// GetRange pins a version by the file's identity: Put replaces an object
// by renaming a new file over it, so another inode (or size, or
// modification time) is another version.
func (s *Store) GetRange(ctx context.Context, key string, offset int64, version string) (*storage.Range, error) {
	path, err := s.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, translateError("get", key, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = notObject(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, translateError("get", key, err)
	}
	v := fileVersion(fi)
	switch {
	case version != "" && v != version:
		f.Close()
		return nil, storage.Changed("get", key, "replaced")
	case offset < 0 || offset > fi.Size():
		f.Close()
		return nil, storage.Permanent(fmt.Errorf("get %s: offset %d outside the object's %d bytes", key, offset, fi.Size()))
	case offset > 0:
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, translateError("get", key, err)
		}
	}
	return &storage.Range{Body: f, Version: v, Size: fi.Size()}, nil
}

func fileVersion(fi fs.FileInfo) string {
	v := fmt.Sprintf("%d.%d", fi.Size(), fi.ModTime().UnixNano())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		v = fmt.Sprintf("%d.%d.%s", st.Dev, st.Ino, v)
	}
	return v
}

func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	path, err := s.path(key)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	fi, err := os.Stat(path)
	if err == nil && !fi.Mode().IsRegular() {
		err = notObject(path, fi)
	}
	if err != nil {
		return storage.ObjectInfo{}, translateError("stat", key, err)
	}
	return storage.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// notObject reports a directory where an object was asked for. Object
// stores have no directories: "a" is simply missing when only "a/b" exists.
func notObject(path string, fi fs.FileInfo) error {
	if fi.IsDir() {
		return &fs.PathError{Op: "open", Path: path, Err: syscall.EISDIR}
	}
	return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("not a regular file (%s)", fi.Mode().Type())}
}

// Delete also removes the directories the deletion leaves empty, up to root,
// so that deleting everything leaves a clean tree.
func (s *Store) Delete(ctx context.Context, key string) error {
	path, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	// os.Remove would take an empty directory too, which is no object.
	fi, err := os.Lstat(path)
	if err == nil && fi.IsDir() {
		return nil
	}
	if err == nil {
		err = os.Remove(path)
	}
	if err != nil {
		if err := translateError("delete", key, err); !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		return nil
	}
	dir := filepath.Dir(path)
	// Retention deletes the sentinel before the parts it names, and that
	// order must survive a crash. A concurrent Delete of the directory's
	// last other object may have removed the directory already.
	if err := syncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return translateError("delete", key, err)
	}
	for ; dir != s.root && len(dir) > len(s.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

func (s *Store) Close() error { return nil }
