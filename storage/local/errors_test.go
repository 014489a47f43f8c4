package local

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/walnut-pg/walnut/storage"
)

func TestTranslateError(t *testing.T) {
	pathErr := func(errno syscall.Errno) error {
		return &fs.PathError{Op: "open", Path: "/archive/wal/x", Err: errno}
	}
	tests := []struct {
		name      string
		err       error
		notFound  bool
		permanent bool
	}{
		{"missing", pathErr(syscall.ENOENT), true, false},
		{"parent is a file", pathErr(syscall.ENOTDIR), true, false},
		{"key is a directory", pathErr(syscall.EISDIR), true, false},
		{"permission denied", pathErr(syscall.EACCES), false, true},
		{"operation not permitted", pathErr(syscall.EPERM), false, true},
		{"read-only filesystem", pathErr(syscall.EROFS), false, true},
		{"I/O error", pathErr(syscall.EIO), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := translateError("get", "wal/x", tt.err)
			if got := errors.Is(err, storage.ErrNotFound); got != tt.notFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, got, tt.notFound)
			}
			if got := storage.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tt.permanent)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap the cause %v", err, tt.err)
			}
			if !strings.Contains(err.Error(), "get wal/x") {
				t.Errorf("%q does not name the operation and key", err)
			}
		})
	}
}

func TestWriteErrorIsNeverNotFound(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOENT, syscall.ENOTDIR, syscall.EISDIR, syscall.EACCES, syscall.ENOSPC} {
		err := writeError("put", "wal/x", &fs.PathError{Op: "rename", Path: "/archive/wal/x", Err: errno})
		if errors.Is(err, storage.ErrNotFound) {
			t.Errorf("writeError(%v) = %v, which is ErrNotFound", errno, err)
		}
		if !strings.HasPrefix(err.Error(), "put wal/x: ") {
			t.Errorf("%q does not name the key", err)
		}
	}
	for _, errno := range []syscall.Errno{syscall.ENOTDIR, syscall.EACCES} {
		if err := writeError("put", "wal/x", errno); !storage.IsPermanent(err) {
			t.Errorf("writeError(%v) = %v, want Permanent", errno, err)
		}
	}
	if err := writeError("put", "wal/x", syscall.ENOSPC); storage.IsPermanent(err) {
		t.Errorf("writeError(ENOSPC) = %v is Permanent; retention may free space", err)
	}
}

// Directories sort as their keys do, with a "/" after the name.
func TestCompareEntries(t *testing.T) {
	sorted := []entry{
		{name: "a-b"},
		{name: "a", dir: true}, // keys "a/..."
		{name: "a0"},
		{name: "base_1.json"},
		{name: "base_1", dir: true},
		{name: "wal", dir: true},
		{name: "walnut.json"},
	}
	for i := range sorted {
		for j := range sorted {
			got := compareEntries(sorted[i], sorted[j])
			if (i < j && got >= 0) || (i > j && got <= 0) || (i == j && got != 0) {
				t.Errorf("compareEntries(%+v, %+v) = %d", sorted[i], sorted[j], got)
			}
		}
	}
}
