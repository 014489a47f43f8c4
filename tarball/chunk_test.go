package tarball

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestCombineCRC32C(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, cut := range []int{0, 1, 7, 512, 8192, 150_001, len(data) - 1, len(data)} {
		a, b := data[:cut], data[cut:]
		if got, want := CombineCRC32C(crcOf(a), crcOf(b), int64(len(b))), crcOf(data); got != want {
			t.Errorf("cut at %d: combined %08x, whole %08x", cut, got, want)
		}
	}
	// Many pieces, combined left to right as extraction does.
	var crc uint32
	for off := 0; off < len(data); off += 4096 {
		p := data[off:min(off+4096, len(data))]
		crc = CombineCRC32C(crc, crcOf(p), int64(len(p)))
	}
	if crc != crcOf(data) {
		t.Errorf("4 KiB pieces combine to %08x, whole %08x", crc, crcOf(data))
	}
}

func TestChunkName(t *testing.T) {
	for _, c := range []struct {
		path string
		off  int64
		want string
	}{
		{"base/1/16385", 0, "base/1/16385.walnut-chunk-0000000000000000"},
		{"base/1/16385.1", 64 << 20, "base/1/16385.1.walnut-chunk-0000000067108864"},
	} {
		if got := ChunkName(c.path, c.off); got != c.want {
			t.Errorf("ChunkName(%q, %d) = %q, want %q", c.path, c.off, got, c.want)
		}
	}
}

// chunkedFile describes data as a file of chunks of size n, all in
// partition 1.
func chunkedFile(path string, data []byte, n int) File {
	f := File{Path: path, Type: TypeFile, Size: int64(len(data)), Mode: 0o600, ModTime: mtime, CRC32C: crcOf(data)}
	for off := 0; off < len(data); off += n {
		p := data[off:min(off+n, len(data))]
		f.Chunks = append(f.Chunks, Chunk{Offset: int64(off), Size: int64(len(p)), CRC32C: crcOf(p), Partition: 1})
	}
	return f
}

func TestCheckChunks(t *testing.T) {
	data := []byte("0123456789abcdefghij")
	good := chunkedFile("f", data, 8)
	if err := CheckChunks(good); err != nil {
		t.Fatalf("good chunks refused: %v", err)
	}
	mutate := func(fn func(f *File)) File {
		f := good
		f.Chunks = append([]Chunk(nil), good.Chunks...)
		fn(&f)
		return f
	}
	for name, f := range map[string]File{
		"gap":         mutate(func(f *File) { f.Chunks = append(f.Chunks[:1:1], f.Chunks[2:]...) }),
		"overlap":     mutate(func(f *File) { f.Chunks[1].Offset-- }),
		"beyond size": mutate(func(f *File) { f.Chunks[2].Size += 4 }),
		"short":       mutate(func(f *File) { f.Size += 4 }),
		"empty chunk": mutate(func(f *File) { f.Chunks[1].Size = 0 }),
		"duplicate":   mutate(func(f *File) { f.Chunks = append(f.Chunks[:2:2], f.Chunks[1:]...) }),
		"whole crc":   mutate(func(f *File) { f.CRC32C++ }),
		"chunk crc":   mutate(func(f *File) { f.Chunks[0].CRC32C++ }),
		"directory":   mutate(func(f *File) { f.Type = TypeDir }),
	} {
		if err := CheckChunks(f); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: CheckChunks = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestByPartition(t *testing.T) {
	data := []byte("0123456789abcdefghij")
	f := chunkedFile("base/1/2", data, 8)
	f.Chunks[1].Partition = 2
	plain := File{Path: "PG_VERSION", Type: TypeFile, Size: 3, Partition: 1}
	got, err := ByPartition([]File{plain, f})
	if err != nil {
		t.Fatal(err)
	}
	if len(got[1]) != 3 || len(got[2]) != 1 {
		t.Fatalf("partitions: %v", got)
	}
	c := got[2][ChunkName("base/1/2", 8)]
	if c.Size != 8 || c.CRC32C != crcOf(data[8:16]) || c.Partition != 2 || c.Mode != f.Mode {
		t.Errorf("chunk entry %+v", c)
	}
	clash := File{Path: ChunkName("base/1/2", 0), Type: TypeFile, Partition: 1}
	if _, err := ByPartition([]File{f, clash}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a file named like a chunk of another: %v, want ErrCorrupt", err)
	}
}
