package tarball

import (
	"archive/tar"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// Extractor writes tar entries under os.Root destinations, so no entry name
// or symlink can make it write outside them, whatever the archive holds.
// Destinations are expected to be fresh: an entry whose path exists fails.
// One Extractor may run Extract on several partitions at once.
type Extractor struct {
	// Root is the default destination.
	Root *os.Root
	// Mounts sends entries under a name prefix such as "pg_tblspc/16384/"
	// to another root, prefix stripped; the longest matching prefix wins.
	// A directory entry naming the prefix itself stands for that root.
	Mounts map[string]*os.Root
	// Expect, when non-nil, is the manifest: every entry must be listed
	// with the same type (and, for files, size and CRC32C; for symlinks,
	// target), else Extract fails with ErrCorrupt naming the path.
	Expect map[string]File
	// Fsync makes each file durable as it completes, and each directory
	// once the archive moves past it (and again at the end if revisited).
	Fsync bool
	// Writeback asks the kernel to start writing each file out while it
	// is being written (Linux: sync_file_range), so that a sync of
	// everything at the end finds little left to do and the disk works
	// while the archive is still being decoded. It makes nothing durable.
	Writeback bool
	// Chunks, when set, writes the entries it knows as chunks into their
	// files, in place; it may be shared by Extract calls running at once.
	// The caller checks Chunks.Finish after the last of them.
	Chunks *Assembler
	// RootDirEntry accepts a directory entry named "/" as the destination
	// root itself. WAL-E's partitions begin with one: Python's tarfile
	// names the data directory's own entry "/". Any other absolute name
	// is still refused.
	RootDirEntry bool
	// Other, when set, is offered each regular-file entry that Expect
	// does not list, with its data; it says whether it took the entry
	// (and checked it), else the entry is refused as unlisted.
	Other func(name string, size int64, r io.Reader) (bool, error)
}

type mount struct {
	prefix string // cleaned, no trailing slash
	root   *os.Root
}

// dirKey names a directory in one destination root.
type dirKey struct {
	root *os.Root
	dir  string
}

type pendingDir struct {
	dirKey
	mode  fs.FileMode
	mtime time.Time
}

// extraction is the state of one Extract call.
type extraction struct {
	x       *Extractor
	mounts  []mount // longest prefix first
	buf     []byte
	dirs    []pendingDir        // modes and mtimes to set once entries are in
	unsync  map[dirKey]struct{} // directories with entries not yet fsynced
	current dirKey              // the directory the archive is in now
}

// Extract writes the entries of the tar stream r and returns them, with the
// CRC32C of each file computed while writing. On error it returns the
// entries written so far; a file that failed is removed. It reads r to its
// end, so a decompressor below gets to verify its own checksum.
func (x *Extractor) Extract(r io.Reader) ([]File, error) {
	if x.Root == nil {
		return nil, errors.New("extract: no destination root")
	}
	e := &extraction{x: x, unsync: map[dirKey]struct{}{}}
	for prefix, root := range x.Mounts {
		clean, err := cleanName(prefix)
		if err == nil && (clean == "." || root == nil) {
			err = errors.New("needs a non-empty prefix and a root")
		}
		if err != nil {
			return nil, fmt.Errorf("extract: mount %q: %w", prefix, err)
		}
		e.mounts = append(e.mounts, mount{prefix: clean, root: root})
	}
	slices.SortFunc(e.mounts, func(a, b mount) int { return len(b.prefix) - len(a.prefix) })

	bp := getBuf()
	defer putBuf(bp)
	e.buf = *bp

	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	var files []File
	var entryEnd int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			// archive/tar also reports EOF for a stream cut between
			// entries; only the two zero blocks of the trailer mean the
			// writer finished. Codecs without an end marker (s2, snappy,
			// none) rely on this.
			if cr.n < entryEnd+2*512 {
				return files, fmt.Errorf("extract: archive truncated after %d bytes: no end-of-archive marker", cr.n)
			}
			break
		}
		if err != nil {
			return files, fmt.Errorf("extract: read tar after %d bytes: %w", cr.n, err)
		}
		dataStart := cr.n
		f, err := e.entry(hdr, tr)
		if err != nil {
			return files, err
		}
		files = append(files, f)
		entryEnd = dataStart
		if hdr.Typeflag == tar.TypeReg {
			entryEnd += (hdr.Size + 511) &^ 511
		}
	}
	if err := e.finish(); err != nil {
		return files, err
	}
	if _, err := io.CopyBuffer(io.Discard, onlyReader{cr}, e.buf); err != nil {
		return files, fmt.Errorf("extract: read past end of archive: %w", err)
	}
	return files, nil
}

// route picks the destination root of a cleaned entry name.
func (e *extraction) route(name string) (*os.Root, string) {
	for _, m := range e.mounts {
		if name == m.prefix {
			return m.root, "."
		}
		if rest, ok := strings.CutPrefix(name, m.prefix+"/"); ok {
			return m.root, rest
		}
	}
	return e.x.Root, name
}

func (e *extraction) entry(hdr *tar.Header, tr io.Reader) (File, error) {
	if e.x.RootDirEntry && hdr.Name == "/" && hdr.Typeflag == tar.TypeDir {
		f := File{Path: ".", Type: TypeDir, Mode: fs.FileMode(hdr.Mode).Perm(), ModTime: hdr.ModTime}
		return f, e.dir(e.x.Root, ".", f)
	}
	f, err := headerFile(hdr)
	if err != nil {
		return File{}, fmt.Errorf("extract %q: %w", hdr.Name, err)
	}
	name := f.Path
	var want File
	if e.x.Expect != nil {
		var ok bool
		if want, ok = e.x.Expect[name]; !ok {
			if e.x.Other != nil && f.Type == TypeFile {
				taken, err := e.x.Other(name, f.Size, tr)
				if err != nil {
					return File{}, fmt.Errorf("extract %q: %w", name, err)
				}
				if taken {
					return f, nil
				}
			}
			return File{}, fmt.Errorf("extract %q: %w: entry is not in the manifest", name, ErrCorrupt)
		}
		if err := compareHeader(f, want); err != nil {
			return File{}, fmt.Errorf("extract %q: %w", name, err)
		}
	}

	target := name
	ref, isChunk := e.x.Chunks.lookup(name)
	if isChunk {
		if c := ref.a.f.Chunks[ref.i]; f.Type != TypeFile || f.Size != c.Size {
			return File{}, fmt.Errorf("extract %q: %w: archive has a %s of %d bytes, manifest a chunk of %d", name, ErrCorrupt, f.Type, f.Size, c.Size)
		}
		target = ref.a.f.Path
	}
	root, rel := e.route(target)
	if rel == "." && f.Type != TypeDir {
		return File{}, fmt.Errorf("extract %q: %w: a %s cannot replace a destination root", name, ErrUnsafe, f.Type)
	}
	if rel != "." {
		if err := e.enter(root, rel); err != nil {
			return File{}, fmt.Errorf("extract %q: %w", name, rootErr(err))
		}
	}

	switch f.Type {
	case TypeDir:
		err = e.dir(root, rel, f)
	case TypeSymlink:
		err = e.symlink(root, rel, f)
	case TypeFile:
		if isChunk {
			// Checked against the manifest, and the file as a whole once
			// its last chunk is in, by the assembler.
			f.CRC32C, err = e.chunk(root, rel, ref, tr)
			break
		}
		f.CRC32C, err = e.file(root, rel, f, tr)
		if err == nil && e.x.Expect != nil && f.CRC32C != want.CRC32C {
			err = fmt.Errorf("%w: CRC32C %08x, manifest %08x", ErrCorrupt, f.CRC32C, want.CRC32C)
			if rerr := root.Remove(rel); rerr != nil {
				err = fmt.Errorf("%w; removing it: %v", err, rerr)
			}
		}
	}
	if errors.Is(err, fs.ErrExist) {
		return File{}, fmt.Errorf("extract %q: already exists (extraction needs a fresh destination): %w", name, err)
	}
	if err != nil {
		return File{}, fmt.Errorf("extract %q: %w", name, rootErr(err))
	}
	return f, nil
}

// headerFile reads the manifest entry a tar header stands for, refusing
// names and kinds of entry no restore may write.
func headerFile(hdr *tar.Header) (File, error) {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return File{}, err
	}
	f := File{Path: name, Mode: fs.FileMode(hdr.Mode).Perm(), ModTime: hdr.ModTime}
	switch hdr.Typeflag {
	case tar.TypeReg:
		f.Type, f.Size = TypeFile, hdr.Size
	case tar.TypeDir:
		f.Type = TypeDir
	case tar.TypeSymlink:
		f.Type, f.Link = TypeSymlink, hdr.Linkname
	case tar.TypeLink:
		return File{}, fmt.Errorf("%w: hard links are not allowed", ErrUnsafe)
	default:
		return File{}, fmt.Errorf("%w: entry type %q is not a file, directory or symlink", ErrUnsafe, hdr.Typeflag)
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return File{}, fmt.Errorf("%w: sparse files are not allowed", ErrUnsafe)
		}
	}
	return f, nil
}

// compareHeader checks what a header says of an entry against its
// manifest entry; the CRC32C can only be checked once the data is read.
func compareHeader(f, want File) error {
	switch {
	case want.Type != f.Type:
		return fmt.Errorf("%w: archive has a %s, manifest a %s", ErrCorrupt, f.Type, want.Type)
	case f.Type == TypeFile && want.Size != f.Size:
		return fmt.Errorf("%w: archive has %d bytes, manifest %d", ErrCorrupt, f.Size, want.Size)
	case f.Type == TypeSymlink && want.Link != f.Link:
		return fmt.Errorf("%w: symlink points to %q, manifest says %q", ErrCorrupt, f.Link, want.Link)
	}
	return nil
}

// enter makes sure the parent of rel exists and, with Fsync, syncs the
// directory the archive just left: tars written by Writer hold a
// directory's entries together, so leaving it usually means it is done.
func (e *extraction) enter(root *os.Root, rel string) error {
	parent := path.Dir(rel)
	if parent != "." {
		if err := root.MkdirAll(parent, 0o700); err != nil {
			return err
		}
	}
	if !e.x.Fsync {
		return nil
	}
	here := dirKey{root, parent}
	if here != e.current && e.current.root != nil {
		if _, ok := e.unsync[e.current]; ok {
			if err := syncDir(e.current); err != nil {
				return err
			}
			delete(e.unsync, e.current)
		}
	}
	e.current = here
	// MkdirAll may have created ancestors: their parents changed too.
	for d := parent; ; d = path.Dir(d) {
		e.unsync[dirKey{root, d}] = struct{}{}
		if d == "." {
			break
		}
	}
	return nil
}

func (e *extraction) dir(root *os.Root, rel string, f File) error {
	if rel != "." {
		if err := root.MkdirAll(rel, 0o700); err != nil {
			return err
		}
	}
	// A mode without owner rwx would stop us (or a concurrent partition)
	// from filling the directory, so such modes wait for the end.
	if f.Mode&0o700 == 0o700 {
		if err := root.Chmod(rel, f.Mode); err != nil {
			return err
		}
	}
	e.dirs = append(e.dirs, pendingDir{dirKey{root, rel}, f.Mode, f.ModTime})
	return nil
}

func (e *extraction) symlink(root *os.Root, rel string, f File) error {
	// os.Root refuses to follow a symlink out of the root, but would still
	// create one; a restored data directory must not hold links that point
	// elsewhere once it is used without os.Root.
	if f.Link == "" || strings.HasPrefix(f.Link, "/") {
		return fmt.Errorf("%w: symlink target %q is absolute or empty", ErrUnsafe, f.Link)
	}
	// Any ".." is refused, not only one that climbs out on paper: through
	// links already extracted ("a" -> "."), "a/../x" resolves elsewhere
	// than it reads.
	for _, seg := range strings.Split(f.Link, "/") {
		if seg == ".." {
			return fmt.Errorf("%w: symlink target %q contains \"..\"", ErrUnsafe, f.Link)
		}
	}
	return root.Symlink(f.Link, rel)
}

// file writes one regular file, created exclusively so it can never follow
// or overwrite anything already there, and returns its CRC32C. Any failure
// removes what was written.
func (e *extraction) file(root *os.Root, rel string, f File, r io.Reader) (crc uint32, err error) {
	out, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	defer func() {
		if out != nil {
			out.Close()
		}
		if err != nil {
			if rerr := root.Remove(rel); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = fmt.Errorf("%w; removing partial file: %v", err, rerr)
			}
		}
	}()
	var flushed int64 // bytes handed to writeback so far
	for remaining := f.Size; remaining > 0; {
		chunk := e.buf[:min(int64(len(e.buf)), remaining)]
		n, rerr := io.ReadFull(r, chunk)
		if rerr != nil {
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("read archive: %w", rerr)
		}
		crc = crc32.Update(crc, castagnoli, chunk[:n])
		if _, err := out.Write(chunk[:n]); err != nil {
			return 0, err
		}
		remaining -= int64(n)
		if done := f.Size - remaining; e.x.Writeback && (done-flushed >= writebackChunk || remaining == 0) {
			startWriteback(out, flushed, done-flushed)
			flushed = done
		}
	}
	if err := out.Chmod(f.Mode); err != nil {
		return 0, err
	}
	if e.x.Fsync {
		if err := out.Sync(); err != nil {
			return 0, err
		}
	}
	cerr := out.Close()
	out = nil
	if cerr != nil {
		return 0, cerr
	}
	if err := root.Chtimes(rel, f.ModTime, f.ModTime); err != nil {
		return 0, err
	}
	return crc, nil
}

// finish sets directory modes and mtimes now that their entries are in
// (deepest first, so a parent whose mode denies search is set only after
// its children no longer need reaching), then syncs every directory still unsynced. A directory's own
// mode and mtime are not worth another fsync each: what must be durable is
// that its entries exist.
func (e *extraction) finish() error {
	slices.SortStableFunc(e.dirs, func(a, b pendingDir) int {
		return strings.Count(b.dir, "/") - strings.Count(a.dir, "/")
	})
	for _, d := range e.dirs {
		if d.mode&0o700 != 0o700 {
			if err := d.root.Chmod(d.dir, d.mode); err != nil {
				return fmt.Errorf("extract: chmod %q: %w", d.dir, err)
			}
		}
		if err := d.root.Chtimes(d.dir, d.mtime, d.mtime); err != nil {
			return fmt.Errorf("extract: set mtime of %q: %w", d.dir, err)
		}
	}
	for k := range e.unsync {
		if err := syncDir(k); err != nil {
			return fmt.Errorf("extract: %w", err)
		}
	}
	return nil
}

func syncDir(k dirKey) error {
	d, err := k.root.Open(k.dir)
	if err != nil {
		return fmt.Errorf("fsync directory %q: %w", k.dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %q: %w", k.dir, err)
	}
	return nil
}

// rootErr explains os.Root's refusal, whose own text ("path escapes from
// parent") does not say that a symlink in the archive is the cause.
func rootErr(err error) error {
	if err != nil && !errors.Is(err, ErrUnsafe) && strings.Contains(err.Error(), "escapes from parent") {
		return fmt.Errorf("%w: path leads outside the destination through a symlink: %v", ErrUnsafe, err)
	}
	return err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// onlyReader hides io.WriterTo so CopyBuffer uses our buffer.
type onlyReader struct{ io.Reader }
