package tarball

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// chunkedArchives packs data as the file "base/1/16385" in chunks of n
// bytes, dealt round robin into parts partitions as two backup workers
// would, and returns the tars and the manifest entry.
func chunkedArchives(t *testing.T, data []byte, n, parts int) ([][]byte, File) {
	t.Helper()
	bufs := make([]bytes.Buffer, parts)
	ws := make([]*Writer, parts)
	for i := range ws {
		ws[i] = NewWriter(&bufs[i])
	}
	f := File{Path: "base/1/16385", Type: TypeFile, Size: int64(len(data)), Mode: 0o600, ModTime: mtime, CRC32C: crcOf(data)}
	for i, off := 0, 0; off < len(data); i, off = i+1, off+n {
		p := data[off:min(off+n, len(data))]
		c, shrunk, err := ws[i%parts].AddChunk(f.Path, bytes.NewReader(p), int64(off), int64(len(p)), 0o600, mtime)
		if err != nil || shrunk {
			t.Fatalf("AddChunk at %d: %v (shrunk %v)", off, err, shrunk)
		}
		if c.CRC32C != crcOf(p) {
			t.Fatalf("AddChunk at %d: CRC32C %08x, want %08x", off, c.CRC32C, crcOf(p))
		}
		c.Partition = i%parts + 1
		f.Chunks = append(f.Chunks, c)
	}
	out := make([][]byte, parts)
	for i, w := range ws {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		out[i] = bufs[i].Bytes()
	}
	return out, f
}

func randomBytes(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// extractAll extracts the archives at once, each checked against its
// partition's entries, sharing one assembler, and returns Finish's error
// or the first Extract error.
func extractAll(t *testing.T, root *os.Root, archives [][]byte, files []File) error {
	t.Helper()
	byPart, err := ByPartition(files)
	if err != nil {
		t.Fatal(err)
	}
	asm, err := NewAssembler(files)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(archives))
	for i, a := range archives {
		wg.Go(func() {
			expect := byPart[i+1]
			if expect == nil {
				expect = map[string]File{}
			}
			x := &Extractor{Root: root, Expect: expect, Chunks: asm, Writeback: true}
			_, errs[i] = x.Extract(bytes.NewReader(a))
		})
	}
	wg.Wait()
	ferr := asm.Finish()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ferr
}

func TestChunkedRoundTrip(t *testing.T) {
	data := randomBytes(5*copyBufSize + 1234) // chunks spanning several copy buffers, a short last one
	archives, f := chunkedArchives(t, data, 300_000, 2)
	if err := CheckChunks(f); err != nil {
		t.Fatalf("writer's chunks: %v", err)
	}
	_, dest, root := newDest(t)
	if err := extractAll(t, root, archives, []File{f}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dest, f.Path))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("reassembled file differs (%d bytes, want %d)", len(got), len(data))
	}
	st, err := os.Stat(filepath.Join(dest, f.Path))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || !st.ModTime().Equal(mtime) {
		t.Errorf("mode %v mtime %v, want 0600 %v", st.Mode().Perm(), st.ModTime(), mtime)
	}
	// Nothing but the file itself: no chunk names left behind.
	ents, _ := os.ReadDir(filepath.Join(dest, "base/1"))
	if len(ents) != 1 {
		t.Errorf("base/1 holds %d entries, want 1", len(ents))
	}
}

// A stock tar reader sees ordinary files under the chunk names; joined in
// name order they are the file (what the README's hand restore does).
func TestChunkNamesJoinInOrder(t *testing.T) {
	data := randomBytes(1_000_000)
	archives, f := chunkedArchives(t, data, 65_536, 3)
	_, dest, root := newDest(t)
	for _, a := range archives {
		if _, err := (&Extractor{Root: root}).Extract(bytes.NewReader(a)); err != nil {
			t.Fatal(err)
		}
	}
	names, err := filepath.Glob(filepath.Join(dest, f.Path) + ChunkSuffix + "*")
	if err != nil || len(names) != len(f.Chunks) {
		t.Fatalf("%d chunk files (%v), want %d", len(names), err, len(f.Chunks))
	}
	var joined []byte
	for _, n := range names { // Glob sorts
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		joined = append(joined, b...)
	}
	if !bytes.Equal(joined, data) {
		t.Fatal("chunks joined in name order differ from the file")
	}
}

func TestChunkedCorruption(t *testing.T) {
	data := randomBytes(1_000_000)
	const n = 100_000
	type tc struct {
		archives [][]byte
		file     File
	}
	cases := map[string]func() tc{
		"missing chunk": func() tc {
			archives, f := chunkedArchives(t, data, n, 2)
			// Partition 2 rebuilt without its last chunk, which the
			// manifest still lists there.
			var buf bytes.Buffer
			w := NewWriter(&buf)
			for i := 1; i < len(f.Chunks)-1; i += 2 {
				c := f.Chunks[i]
				w.AddChunk(f.Path, bytes.NewReader(data[c.Offset:c.Offset+c.Size]), c.Offset, c.Size, 0o600, mtime)
			}
			w.Close()
			archives[1] = buf.Bytes()
			return tc{archives, f}
		},
		"duplicate chunk": func() tc {
			_, f := chunkedArchives(t, data, n, 1)
			var buf bytes.Buffer
			w := NewWriter(&buf)
			for _, c := range append(f.Chunks[:3:3], f.Chunks[2:]...) {
				w.AddChunk(f.Path, bytes.NewReader(data[c.Offset:c.Offset+c.Size]), c.Offset, c.Size, 0o600, mtime)
			}
			w.Close()
			return tc{[][]byte{buf.Bytes()}, f}
		},
		"damaged chunk": func() tc {
			bad := bytes.Clone(data)
			bad[450_000] ^= 1
			archives, _ := chunkedArchives(t, bad, n, 2)
			_, f := chunkedArchives(t, data, n, 2)
			return tc{archives, f}
		},
		"chunk not in the manifest": func() tc {
			archives, f := chunkedArchives(t, data, n, 2)
			f.Chunks[1].Partition = 1 // listed in the wrong partition
			return tc{archives, f}
		},
		"overlap": func() tc {
			archives, f := chunkedArchives(t, data, n, 2)
			f.Chunks[3].Offset -= 10
			return tc{archives, f}
		},
		"beyond size": func() tc {
			archives, f := chunkedArchives(t, data, n, 2)
			f.Chunks = append(f.Chunks, Chunk{Offset: f.Size, Size: 10, Partition: 1})
			return tc{archives, f}
		},
		"whole-file CRC": func() tc {
			archives, f := chunkedArchives(t, data, n, 2)
			f.CRC32C ^= 1
			return tc{archives, f}
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			c := mk()
			_, dest, root := newDest(t)
			err := extractAll(t, root, c.archives, []File{c.file})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), c.file.Path) {
				t.Errorf("error does not name the file: %v", err)
			}
			t.Log(err)
			if b, rerr := os.ReadFile(filepath.Join(dest, c.file.Path)); rerr == nil {
				t.Errorf("a %d-byte file was left after the failure", len(b))
			}
		})
	}
}

// Without a manifest entry for it, a chunk-named entry is a plain file.
func TestChunkSizeMismatch(t *testing.T) {
	data := randomBytes(300_000)
	archives, f := chunkedArchives(t, data, 100_000, 1)
	f.Chunks[0].Size, f.Chunks[1].Offset, f.Chunks[1].Size = 150_000, 150_000, 50_000
	f.Chunks[0].CRC32C, f.Chunks[1].CRC32C = crcOf(data[:150_000]), crcOf(data[150_000:200_000])
	_, _, root := newDest(t)
	asm, err := NewAssembler([]File{f})
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&Extractor{Root: root, Chunks: asm}).Extract(bytes.NewReader(archives[0]))
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("chunk of the wrong size: %v, want ErrCorrupt", err)
	}
	asm.Finish()
}
