package tarball

import (
	"fmt"
	"strconv"
)

// A file larger than a chunk is stored as several tar entries, one per
// chunk, so that several writers can pack one file and several
// extractors can write it back in place at once. Each entry is a plain
// regular file named ChunkName(path, offset): stock tar extracts them
// side by side, and joining them in name order gives the file back (the
// offset is zero-padded to a fixed width, so name order is offset order).
// GNU tar has no way to write an entry at an offset into an existing file
// (a sparse entry replaces the file), hence separate names.

// ChunkSuffix separates a file's path from its chunk's offset.
const ChunkSuffix = ".walnut-chunk-"

// chunkOffsetDigits is wide enough for any offset a file system allows
// (10^16 bytes), and fixed so that sorted names are sorted offsets.
const chunkOffsetDigits = 16

// Chunk is one piece of a chunked file, in files.json.
type Chunk struct {
	Offset    int64  `json:"offset"`
	Size      int64  `json:"size"`
	CRC32C    uint32 `json:"crc32c"` // of this chunk's bytes
	Partition int    `json:"partition"`
}

// ChunkName is the tar entry name of the chunk of path at offset.
func ChunkName(path string, offset int64) string {
	s := strconv.FormatInt(offset, 10)
	for len(s) < chunkOffsetDigits {
		s = "0" + s
	}
	return path + ChunkSuffix + s
}

// CheckChunks checks that a chunked file's chunks cover it exactly, in
// order, without gaps or overlaps, and that their CRC32Cs combine to the
// file's: a manifest that disagrees with itself is refused before a
// restore writes anything.
func CheckChunks(f File) error {
	if len(f.Chunks) == 0 {
		return nil
	}
	if f.Type != TypeFile {
		return fmt.Errorf("%w: a %s cannot have chunks", ErrCorrupt, f.Type)
	}
	var end int64
	var crc uint32
	for i, c := range f.Chunks {
		switch {
		case c.Size <= 0:
			return fmt.Errorf("%w: chunk %d at offset %d has size %d", ErrCorrupt, i, c.Offset, c.Size)
		case c.Offset < end:
			return fmt.Errorf("%w: chunk at offset %d overlaps the one before, which ends at %d", ErrCorrupt, c.Offset, end)
		case c.Offset > end:
			return fmt.Errorf("%w: no chunk covers bytes %d to %d", ErrCorrupt, end, c.Offset)
		case c.Offset+c.Size > f.Size:
			return fmt.Errorf("%w: chunk at offset %d ends at %d, beyond the file's %d bytes", ErrCorrupt, c.Offset, c.Offset+c.Size, f.Size)
		}
		end = c.Offset + c.Size
		crc = CombineCRC32C(crc, c.CRC32C, c.Size)
	}
	if end != f.Size {
		return fmt.Errorf("%w: chunks end at %d, the file has %d bytes", ErrCorrupt, end, f.Size)
	}
	if crc != f.CRC32C {
		return fmt.Errorf("%w: chunk CRC32Cs combine to %08x, manifest %08x", ErrCorrupt, crc, f.CRC32C)
	}
	return nil
}

// ByPartition groups manifest entries by the partition that holds them,
// keyed by tar entry name: a chunked file contributes one regular-file
// entry per chunk (its name, size, CRC32C and partition), with the file's
// mode and mtime. Two entries under one name are an error.
func ByPartition(files []File) (map[int]map[string]File, error) {
	out := map[int]map[string]File{}
	seen := map[string]bool{}
	add := func(part int, f File) error {
		if seen[f.Path] {
			return fmt.Errorf("%w: %q is listed twice", ErrCorrupt, f.Path)
		}
		seen[f.Path] = true
		if out[part] == nil {
			out[part] = map[string]File{}
		}
		out[part][f.Path] = f
		return nil
	}
	for _, f := range files {
		if len(f.Chunks) == 0 {
			if err := add(f.Partition, f); err != nil {
				return nil, err
			}
			continue
		}
		for _, c := range f.Chunks {
			e := File{Path: ChunkName(f.Path, c.Offset), Type: TypeFile, Size: c.Size, Mode: f.Mode,
				ModTime: f.ModTime, CRC32C: c.CRC32C, Partition: c.Partition}
			if err := add(c.Partition, e); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
