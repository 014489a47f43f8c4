package tarball

import (
	"archive/tar"
	"fmt"
	"hash/crc32"
	"io"
)

// Check reads the tar stream r as Extract would, writing nothing: every
// entry must be one Extract accepts and agree with its entry in expect
// (type, size, CRC32C, link target). A disagreement is handed to bad and
// the stream read on, so that one run finds every bad file of an object;
// an unreadable stream ends Check with an error. It returns the entries
// read, with the CRC32C computed of each file, and reads r to its end so
// that a decompressor or decryptor below checks its own trailer.
func Check(r io.Reader, expect map[string]File, bad func(path string, err error)) ([]File, error) {
	return check(r, expect, false, bad)
}

// CheckUnlisted reads a tar stream that comes without a manifest, as
// WAL-E's partitions do, under Extract's rules (with RootDirEntry): every
// entry must be one a restore would write, and the stream whole. Only
// the stream's own framing can be checked; a file's content cannot.
func CheckUnlisted(r io.Reader, bad func(path string, err error)) ([]File, error) {
	return check(r, nil, true, bad)
}

func check(r io.Reader, expect map[string]File, rootDirEntry bool, bad func(path string, err error)) ([]File, error) {
	bp := getBuf()
	defer putBuf(bp)
	buf := *bp

	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	var files []File
	var entryEnd int64
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			// As in Extract: a stream cut between entries also reads as EOF.
			if cr.n < entryEnd+2*512 {
				return files, fmt.Errorf("archive truncated after %d bytes: no end-of-archive marker", cr.n)
			}
			break
		}
		if err != nil {
			return files, fmt.Errorf("read tar after %d bytes: %w", cr.n, err)
		}
		dataStart := cr.n
		if rootDirEntry && hdr.Name == "/" && hdr.Typeflag == tar.TypeDir {
			continue
		}
		f, err := headerFile(hdr)
		if err != nil {
			bad(hdr.Name, err)
		}
		want, listed := expect[f.Path]
		switch {
		case expect == nil && rootDirEntry:
			listed = false
		case err != nil:
		case seen[f.Path]:
			bad(f.Path, fmt.Errorf("%w: entry appears twice in the object", ErrCorrupt))
			listed = false
		case !listed:
			bad(f.Path, fmt.Errorf("%w: entry is not in the manifest", ErrCorrupt))
		default:
			if cerr := compareHeader(f, want); cerr != nil {
				bad(f.Path, cerr)
				listed = false // reported: no second complaint about its CRC
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			var crc uint32
			for remaining := hdr.Size; remaining > 0; {
				chunk := buf[:min(int64(len(buf)), remaining)]
				n, rerr := io.ReadFull(tr, chunk)
				crc = crc32.Update(crc, castagnoli, chunk[:n])
				remaining -= int64(n)
				if rerr != nil {
					if rerr == io.EOF {
						rerr = io.ErrUnexpectedEOF
					}
					return files, fmt.Errorf("read %q from the archive: %w", hdr.Name, rerr)
				}
			}
			f.CRC32C = crc
			if err == nil && listed && want.Type == TypeFile && crc != want.CRC32C {
				bad(f.Path, fmt.Errorf("%w: CRC32C %08x, manifest %08x", ErrCorrupt, crc, want.CRC32C))
			}
		}
		if err == nil && !seen[f.Path] {
			files = append(files, f)
		}
		seen[f.Path] = true
		entryEnd = dataStart
		if hdr.Typeflag == tar.TypeReg {
			entryEnd += (hdr.Size + 511) &^ 511
		}
	}
	if _, err := io.CopyBuffer(io.Discard, onlyReader{cr}, buf); err != nil {
		return files, fmt.Errorf("read past end of archive: %w", err)
	}
	return files, nil
}
