package tarball

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// entryTypes are the tar types the fuzzer picks from.
var entryTypes = []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo}

// FuzzExtract feeds the extractor archives of two entries whose names,
// link targets, types and contents the fuzzer chooses: whatever they are,
// extraction never panics and never writes outside its root. The tar
// stream itself is built with archive/tar, whose own parser Go fuzzes;
// fed raw bytes, the coverage-guided fuzzer crawled at a run a second
// inside it.
func FuzzExtract(f *testing.F) {
	f.Add(uint8(1), "base", "", uint8(0), "base/1", "", []byte("heap page"))
	f.Add(uint8(0), "../escape", "", uint8(2), "ln", "/etc", []byte("x"))
	f.Add(uint8(2), "ln", "..", uint8(0), "ln/escape", "", []byte("x"))
	f.Add(uint8(2), "a", ".", uint8(2), "a/b", "../..", []byte(""))
	f.Add(uint8(3), "hard", "base/1", uint8(4), "fifo", "", []byte(""))
	f.Add(uint8(1), "/abs", "", uint8(0), "a/../../b", "", []byte("x"))
	f.Fuzz(func(t *testing.T, type1 uint8, name1, link1 string, type2 uint8, name2, link2 string, body []byte) {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, e := range []struct {
			typ        uint8
			name, link string
		}{{type1, name1, link1}, {type2, name2, link2}} {
			h := &tar.Header{Typeflag: entryTypes[int(e.typ)%len(entryTypes)], Name: e.name, Linkname: e.link, Mode: 0o600, ModTime: time.Unix(0, 0)}
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len(body))
			}
			if tw.WriteHeader(h) != nil {
				return // archive/tar cannot write it, so no tar holds it
			}
			if h.Size > 0 {
				tw.Write(body)
			}
		}
		tw.Close()

		parent := fuzzDir(t)
		dest := filepath.Join(parent, "dest")
		if err := os.Mkdir(dest, 0o700); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(dest)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		(&Extractor{Root: root}).Extract(&b)

		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "dest" {
			t.Fatalf("extraction wrote beside its root: %v", entries)
		}
		filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if !d.Type().IsRegular() && !d.IsDir() && d.Type()&fs.ModeSymlink == 0 {
				t.Fatalf("extraction made %s, a %v", p, d.Type())
			}
			if d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			target, err := os.Readlink(p)
			if err != nil {
				t.Fatal(err)
			}
			resolved := filepath.Join(filepath.Dir(p), target)
			if filepath.IsAbs(target) || !strings.HasPrefix(resolved+"/", dest+"/") {
				t.Fatalf("symlink %s -> %s leads outside the root", p, target)
			}
			return nil
		})
	})
}

// fuzzDir is a fresh directory on tmpfs when there is one: extraction
// fsyncs the directories it writes, which on a busy disk can take longer
// than a short fuzz run has left.
func fuzzDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "walnut-fuzz-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// FuzzAssemble feeds the assembler a manifest whose chunk boundaries the
// fuzzer chooses (and may make inconsistent), and a tar holding the
// chunks in an order, with repeats and omissions, it also chooses:
// whatever they are, nothing panics, and either the restore succeeds with
// the file exactly as stored or it fails and leaves no file behind.
func FuzzAssemble(f *testing.F) {
	f.Add([]byte("0123456789abcdefghij"), []byte{5, 12}, []byte{0, 1, 2}, int8(0), uint8(0))
	f.Add([]byte("0123456789abcdefghij"), []byte{5, 12}, []byte{2, 0}, int8(0), uint8(0))
	f.Add([]byte("0123456789abcdefghij"), []byte{5, 12}, []byte{0, 1, 1, 2}, int8(0), uint8(0))
	f.Add([]byte("0123456789abcdefghij"), []byte{5, 12}, []byte{0, 1, 2}, int8(-2), uint8(1))
	f.Add([]byte("0123456789abcdefghij"), []byte{5, 12}, []byte{0, 1, 2}, int8(0), uint8(3))
	f.Fuzz(func(t *testing.T, data, cuts, order []byte, shift int8, damage uint8) {
		if len(data) == 0 || len(data) > 1<<16 || len(order) > 64 {
			return
		}
		// Chunks from the cut points, as the backup writes them.
		bounds := []int{0}
		for _, c := range cuts {
			if b := bounds[len(bounds)-1] + 1 + int(c); b < len(data) && len(bounds) < 32 {
				bounds = append(bounds, b)
			}
		}
		bounds = append(bounds, len(data))
		file := File{Path: "base/1/2", Type: TypeFile, Size: int64(len(data)), Mode: 0o600, ModTime: time.Unix(0, 0), CRC32C: crcOf(data)}
		for i := 0; i+1 < len(bounds); i++ {
			p := data[bounds[i]:bounds[i+1]]
			file.Chunks = append(file.Chunks, Chunk{Offset: int64(bounds[i]), Size: int64(len(p)), CRC32C: crcOf(p), Partition: 1})
		}
		stored := file
		stored.Chunks = append([]Chunk(nil), file.Chunks...)
		// The manifest may then disagree with what is stored.
		last := &file.Chunks[len(file.Chunks)-1]
		last.Offset += int64(shift)
		switch damage % 4 {
		case 1:
			last.Size++
		case 2:
			file.CRC32C++
		case 3:
			data = bytes.Clone(data)
			data[len(data)/2] ^= 1 // stored bytes differ from the manifest's
		}
		var b bytes.Buffer
		w := NewWriter(&b)
		for _, o := range order {
			c := stored.Chunks[int(o)%len(stored.Chunks)]
			w.AddChunk(file.Path, bytes.NewReader(data[c.Offset:c.Offset+c.Size]), c.Offset, c.Size, 0o600, file.ModTime)
		}
		w.Close()

		parent := fuzzDir(t)
		dest := filepath.Join(parent, "dest")
		if err := os.Mkdir(dest, 0o700); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(dest)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		asm, err := NewAssembler([]File{file})
		if err != nil {
			if CheckChunks(file) == nil {
				t.Fatalf("NewAssembler refused chunks CheckChunks accepts: %v", err)
			}
			return
		}
		expect, err := ByPartition([]File{file})
		if err != nil {
			t.Fatal(err)
		}
		_, xerr := (&Extractor{Root: root, Expect: expect[1], Chunks: asm}).Extract(&b)
		ferr := asm.Finish()
		got, rerr := os.ReadFile(filepath.Join(dest, file.Path))
		switch {
		case xerr == nil && ferr == nil:
			if rerr != nil || !bytes.Equal(got, data) || crcOf(got) != file.CRC32C {
				t.Fatalf("assembled without error, but the file is %d bytes (%v), want %d as stored", len(got), rerr, len(data))
			}
		case rerr == nil:
			t.Fatalf("failed (%v; %v) but left a %d-byte file", xerr, ferr, len(got))
		}
	})
}
