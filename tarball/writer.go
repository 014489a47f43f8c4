package tarball

import (
	"archive/tar"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"time"
)

// Writer writes one tar partition. After any error it refuses further
// entries, since the tar stream may hold half an entry.
type Writer struct {
	out *countingWriter
	tw  *tar.Writer
	err error
}

// NewWriter starts a partition on w. Close writes the trailer and never
// closes w.
func NewWriter(w io.Writer) *Writer {
	cw := &countingWriter{w: w}
	return &Writer{out: cw, tw: tar.NewWriter(cw)}
}

// Written is the number of tar bytes written so far, for partition size
// limits. Padding of the last file is counted once the next entry starts.
func (w *Writer) Written() int64 { return w.out.n }

// AddDir adds a directory entry.
func (w *Writer) AddDir(name string, mode fs.FileMode, mtime time.Time) (File, error) {
	f, err := w.begin(name, TypeDir, mode, mtime)
	if err != nil {
		return File{}, err
	}
	if err := w.header(&tar.Header{Typeflag: tar.TypeDir, Name: f.Path + "/"}, f); err != nil {
		return File{}, err
	}
	return f, nil
}

// AddSymlink adds a symbolic link. The target is stored as given; whether
// it is safe to recreate is the extractor's decision.
func (w *Writer) AddSymlink(name, target string, mtime time.Time) (File, error) {
	f, err := w.begin(name, TypeSymlink, 0o777, mtime)
	if err != nil {
		return File{}, err
	}
	if target == "" {
		return File{}, fmt.Errorf("tar add %q: empty symlink target", name)
	}
	f.Link = target
	if err := w.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: f.Path, Linkname: target}, f); err != nil {
		return File{}, err
	}
	return f, nil
}

// AddFile writes exactly size bytes read from r. A file that shrank while
// read is padded with zeros up to size (shrunk is true, so the caller can
// log it): PostgreSQL allows this in a base backup, as WAL replay rewrites
// those pages. A file that grew is cut at size, for the same reason. The
// entry's CRC32C is of the bytes written, padding included.
func (w *Writer) AddFile(name string, r io.Reader, size int64, mode fs.FileMode, mtime time.Time) (f File, shrunk bool, err error) {
	f, err = w.begin(name, TypeFile, mode, mtime)
	if err != nil {
		return File{}, false, err
	}
	if size < 0 {
		return File{}, false, fmt.Errorf("tar add %q: negative size %d", name, size)
	}
	f.Size = size
	if err := w.header(&tar.Header{Typeflag: tar.TypeReg, Name: f.Path, Size: size}, f); err != nil {
		return File{}, false, err
	}

	f.CRC32C, shrunk, err = w.data(name, r, size)
	if err != nil {
		return File{}, false, err
	}
	return f, shrunk, nil
}

// AddChunk writes the piece of the file name from offset, size bytes read
// from r, as its own entry named ChunkName(name, offset), with the rules
// of AddFile for a file that shrank or grew. The returned Chunk has no
// partition; the caller sets it.
func (w *Writer) AddChunk(name string, r io.Reader, offset, size int64, mode fs.FileMode, mtime time.Time) (c Chunk, shrunk bool, err error) {
	f, err := w.begin(name, TypeFile, mode, mtime)
	if err != nil {
		return Chunk{}, false, err
	}
	if size <= 0 || offset < 0 {
		return Chunk{}, false, fmt.Errorf("tar add %q: chunk of %d bytes at offset %d", name, size, offset)
	}
	entry := ChunkName(f.Path, offset)
	if err := w.header(&tar.Header{Typeflag: tar.TypeReg, Name: entry, Size: size}, f); err != nil {
		return Chunk{}, false, err
	}
	c = Chunk{Offset: offset, Size: size}
	c.CRC32C, shrunk, err = w.data(entry, r, size)
	if err != nil {
		return Chunk{}, false, err
	}
	return c, shrunk, nil
}

// data copies an entry's size bytes from r, padding with zeros if r ends
// early, and returns their CRC32C.
func (w *Writer) data(name string, r io.Reader, size int64) (crc uint32, shrunk bool, err error) {
	bp := getBuf()
	defer putBuf(bp)
	buf := *bp
	remaining := size
	for remaining > 0 && !shrunk {
		chunk := buf[:min(int64(len(buf)), remaining)]
		n, rerr := io.ReadFull(r, chunk)
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			shrunk, rerr = true, nil
		}
		if rerr != nil {
			w.err = fmt.Errorf("tar add %q: read: %w", name, rerr)
			return 0, false, w.err
		}
		crc = crc32.Update(crc, castagnoli, chunk[:n])
		if _, werr := w.tw.Write(chunk[:n]); werr != nil {
			w.err = fmt.Errorf("tar add %q: %w", name, werr)
			return 0, false, w.err
		}
		remaining -= int64(n)
	}
	if remaining > 0 {
		clear(buf)
		for remaining > 0 {
			chunk := buf[:min(int64(len(buf)), remaining)]
			crc = crc32.Update(crc, castagnoli, chunk)
			if _, werr := w.tw.Write(chunk); werr != nil {
				w.err = fmt.Errorf("tar add %q: pad: %w", name, werr)
				return 0, false, w.err
			}
			remaining -= int64(len(chunk))
		}
	}
	return crc, shrunk, nil
}

// Close writes the tar trailer. It never closes the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if err := w.tw.Close(); err != nil {
		w.err = fmt.Errorf("tar close: %w", err)
		return w.err
	}
	w.err = errors.New("tar writer closed")
	return nil
}

func (w *Writer) begin(name string, typ Type, mode fs.FileMode, mtime time.Time) (File, error) {
	if w.err != nil {
		return File{}, w.err
	}
	clean, err := cleanName(name)
	if err != nil {
		return File{}, fmt.Errorf("tar add %q: %w", name, err)
	}
	if clean == "." {
		return File{}, fmt.Errorf("tar add %q: %w: names the archive root", name, ErrUnsafe)
	}
	// tar stores whole seconds unless forced into PAX; truncating here keeps
	// the manifest equal to what a restore will set.
	return File{Path: clean, Type: typ, Mode: mode.Perm(), ModTime: mtime.Truncate(time.Second)}, nil
}

func (w *Writer) header(h *tar.Header, f File) error {
	h.Mode = int64(f.Mode)
	h.ModTime = f.ModTime
	if err := w.tw.WriteHeader(h); err != nil {
		w.err = fmt.Errorf("tar add %q: %w", f.Path, err)
		return w.err
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
