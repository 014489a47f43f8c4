package tarball

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"
)

// Assembler writes chunked files back in place while several Extract
// calls (one per partition) run at once: the first chunk of a file to
// arrive creates it at its full size, every chunk is written at its own
// offset (pwrite, so writers never share a file position), and the last
// one checks the whole file's CRC32C, sets its mode and mtime and closes
// it. Only entries the manifest lists as chunks are treated as chunks;
// any other name is extracted as an ordinary file.
type Assembler struct {
	byEntry map[string]chunkRef
	files   []*assembly
}

type chunkRef struct {
	a *assembly
	i int // index in a.f.Chunks
}

// assembly is one chunked file in progress.
type assembly struct {
	f File

	mu      sync.Mutex
	out     *os.File
	root    *os.Root
	rel     string
	started []bool   // a chunk's entry was met (written or being written)
	crcs    []uint32 // CRC32C of each chunk as written
	done    int      // chunks written and checked
	whole   bool     // every chunk in, CRC checked, file closed
	err     error    // the first failure; the file was removed
}

// NewAssembler prepares the chunked files among files (others are
// ignored), refusing any whose chunks do not cover it exactly or whose
// chunk CRC32Cs do not combine to its own.
func NewAssembler(files []File) (*Assembler, error) {
	x := &Assembler{byEntry: map[string]chunkRef{}}
	for _, f := range files {
		if len(f.Chunks) == 0 {
			continue
		}
		if err := CheckChunks(f); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		a := &assembly{f: f, started: make([]bool, len(f.Chunks)), crcs: make([]uint32, len(f.Chunks))}
		x.files = append(x.files, a)
		for i, c := range f.Chunks {
			x.byEntry[ChunkName(f.Path, c.Offset)] = chunkRef{a, i}
		}
	}
	return x, nil
}

// lookup says whether the entry name is a chunk this assembler expects.
func (x *Assembler) lookup(name string) (chunkRef, bool) {
	if x == nil {
		return chunkRef{}, false
	}
	ref, ok := x.byEntry[name]
	return ref, ok
}

// Finish reports the first chunked file not fully written (a chunk that
// no partition held, or one that failed), and removes every such file, so
// none with holes is left looking whole.
func (x *Assembler) Finish() error {
	var first error
	for _, a := range x.files {
		a.mu.Lock()
		if !a.whole && first == nil {
			switch {
			case a.err != nil:
				first = fmt.Errorf("%s: %w", a.f.Path, a.err)
			default:
				i := slices.Index(a.started, false)
				if i < 0 {
					i = 0 // every chunk was met; one failed or is still being written
				}
				c := a.f.Chunks[i]
				first = fmt.Errorf("%s: %w: %d of its %d chunks restored; the one at offset %d (partition %d) is missing",
					a.f.Path, ErrCorrupt, a.done, len(a.f.Chunks), c.Offset, c.Partition)
			}
		}
		if !a.whole && a.err == nil {
			a.fail(fmt.Errorf("%w: incomplete", ErrCorrupt))
		}
		a.mu.Unlock()
	}
	return first
}

// begin claims chunk ref.i for writing and returns the file to write it
// into, creating it (exclusively, at its full size) for the first chunk.
func (a *assembly) begin(root *os.Root, rel string, i int) (*os.File, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return nil, a.err
	}
	if a.started[i] {
		a.fail(fmt.Errorf("%w: chunk at offset %d appears twice in the backup", ErrCorrupt, a.f.Chunks[i].Offset))
		return nil, a.err
	}
	if a.out == nil {
		if slices.Contains(a.started, true) {
			return nil, fmt.Errorf("%w: chunk at offset %d met after the file was closed", ErrCorrupt, a.f.Chunks[i].Offset)
		}
		out, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		// Sized once, so chunks can land in any order; the blocks not yet
		// written read as zeros (a hole) until their chunk arrives.
		if err := out.Truncate(a.f.Size); err != nil {
			out.Close()
			root.Remove(rel)
			return nil, err
		}
		a.out, a.root, a.rel = out, root, rel
	}
	a.started[i] = true
	return a.out, nil
}

// end records a chunk written with the given CRC32C (or failed with err),
// and completes the file after its last chunk.
func (a *assembly) end(i int, crc uint32, err error, fsync bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	c := a.f.Chunks[i]
	if err == nil && crc != c.CRC32C {
		err = fmt.Errorf("%w: chunk at offset %d: CRC32C %08x, manifest %08x", ErrCorrupt, c.Offset, crc, c.CRC32C)
	}
	if err != nil {
		a.fail(err)
		return err
	}
	a.crcs[i] = crc
	a.done++
	if a.done < len(a.f.Chunks) {
		return nil
	}
	// The whole file's CRC32C from its chunks' as written: no second read.
	var whole uint32
	for j, c := range a.f.Chunks {
		whole = CombineCRC32C(whole, a.crcs[j], c.Size)
	}
	if whole != a.f.CRC32C {
		err = fmt.Errorf("%w: CRC32C %08x, manifest %08x", ErrCorrupt, whole, a.f.CRC32C)
	}
	if err == nil {
		err = a.out.Chmod(a.f.Mode)
	}
	if err == nil && fsync {
		err = a.out.Sync()
	}
	if err == nil {
		err = a.out.Close()
		a.out = nil
	}
	if err == nil {
		err = a.root.Chtimes(a.rel, a.f.ModTime, a.f.ModTime)
	}
	if err != nil {
		a.fail(err)
		return err
	}
	a.whole = true
	return nil
}

// fail removes the file, so no partial file is left looking whole; the
// other chunks of it still in flight fail at their end.
func (a *assembly) fail(err error) {
	a.err = err
	if a.out != nil {
		a.out.Close()
		a.out = nil
	}
	if a.root != nil {
		if rerr := a.root.Remove(a.rel); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			a.err = fmt.Errorf("%w; removing partial file: %v", err, rerr)
		}
	}
}

// chunk writes one chunk entry of a chunked file in place.
func (e *extraction) chunk(root *os.Root, rel string, ref chunkRef, r io.Reader) (uint32, error) {
	a, c := ref.a, ref.a.f.Chunks[ref.i]
	out, err := a.begin(root, rel, ref.i)
	if err != nil {
		return 0, err
	}
	var crc uint32
	err = func() error {
		flushed := c.Offset
		for off, end := c.Offset, c.Offset+c.Size; off < end; {
			buf := e.buf[:min(int64(len(e.buf)), end-off)]
			n, rerr := io.ReadFull(r, buf)
			if rerr != nil {
				if rerr == io.EOF {
					rerr = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("read archive: %w", rerr)
			}
			crc = crc32.Update(crc, castagnoli, buf[:n])
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				return err
			}
			off += int64(n)
			if e.x.Writeback && (off-flushed >= writebackChunk || off == end) {
				startWriteback(out, flushed, off-flushed)
				flushed = off
			}
		}
		return nil
	}()
	return crc, a.end(ref.i, crc, err, e.x.Fsync)
}
