package archive

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// TempInfix is in the name of every temporary file WriteFileAtomic makes:
// .<dest's name>.walnut-tmp-<random>.
const TempInfix = ".walnut-tmp-"

// WriteFileAtomic writes dest through a temporary file beside it: written,
// fsynced, renamed, and the directory fsynced. If write fails, dest is
// untouched and the temporary file removed.
func WriteFileAtomic(dest string, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(dest)
	f, err := os.CreateTemp(dir, "."+filepath.Base(dest)+TempInfix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), dest); err != nil {
		return err
	}
	return SyncDir(dir)
}

func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// RemoveStaleTemps removes the temporary files WriteFileAtomic left in dir
// more than age ago: a process killed while writing (a wal-fetch that
// PostgreSQL or an operator killed) cannot clean up after itself, and a
// segment's temp file is 16 MiB. Younger ones may still be being written.
func RemoveStaleTemps(dir string, age time.Duration) {
	m, _ := filepath.Glob(filepath.Join(dir, ".*"+TempInfix+"*"))
	for _, p := range m {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > age {
			os.Remove(p)
		}
	}
}
