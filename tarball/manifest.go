// Package tarball writes tar partitions with a CRC32C per file and extracts
// them without ever writing outside the destination. It knows nothing of
// PostgreSQL, storage or compression: it reads and writes streams.
package tarball

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"
)

// Type is the kind of a manifest entry.
type Type string

const (
	TypeFile    Type = "file"
	TypeDir     Type = "dir"
	TypeSymlink Type = "symlink"
)

// File is one manifest entry, JSON-encoded in files.json.
type File struct {
	Path      string      `json:"path"` // slash-separated, relative, as stored in the tar (no trailing slash)
	Type      Type        `json:"type"`
	Size      int64       `json:"size"`
	Mode      fs.FileMode `json:"mode"` // permission bits only; Type says what it is
	ModTime   time.Time   `json:"mtime"`
	CRC32C    uint32      `json:"crc32c"` // Castagnoli, of the bytes stored
	Link      string      `json:"link,omitempty"`
	Partition int         `json:"partition"` // set by the caller; unused when Chunks is set
	// Chunks, for a file stored in pieces (see ChunkName), lists every
	// piece in offset order; Size and CRC32C stay the whole file's.
	Chunks []Chunk `json:"chunks,omitempty"`
}

var (
	// ErrUnsafe marks an entry refused because writing it could reach
	// outside the destination or create something other than a file,
	// directory or symlink.
	ErrUnsafe = errors.New("unsafe tar entry")
	// ErrCorrupt marks an archive that disagrees with its manifest: a file
	// whose size or CRC32C differs, or an entry the manifest does not list.
	ErrCorrupt = errors.New("corrupt")
)

// castagnoli is hardware-accelerated on amd64 (SSE4.2) and arm64, so the
// checksum costs far less than the compression it runs beside.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// copyBufSize is large enough that a read or write syscall per buffer is
// noise next to the data, small enough that a few streams in flight stay
// far below the memory budget.
const copyBufSize = 256 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

func getBuf() *[]byte  { return copyBufs.Get().(*[]byte) }
func putBuf(b *[]byte) { copyBufs.Put(b) }

// cleanName validates an entry name and returns it in canonical form:
// relative, slash-separated, without "." segments or a trailing slash.
// Any ".." segment is refused even when it would resolve inside, since no
// writer of ours produces one and its only use is to escape.
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", fmt.Errorf("%w: empty name", ErrUnsafe)
	case strings.HasPrefix(name, "/"):
		return "", fmt.Errorf("%w: absolute path", ErrUnsafe)
	case strings.ContainsRune(name, 0):
		return "", fmt.Errorf("%w: NUL byte in name", ErrUnsafe)
	}
	trimmed := strings.TrimRight(name, "/")
	for seg := range strings.SplitSeq(trimmed, "/") {
		if seg == ".." {
			return "", fmt.Errorf("%w: \"..\" in path", ErrUnsafe)
		}
	}
	return path.Clean(trimmed), nil
}
