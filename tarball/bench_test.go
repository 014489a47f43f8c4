package tarball

import (
	"bytes"
	"hash/crc32"
	"io"
	"os"
	"testing"
)

// Writing a partition of 1 MiB files, the shape of a data directory's
// relation segments cut small. Allocations per op should not grow with the
// number of files: the copy buffer is pooled.
func BenchmarkWriteTar(b *testing.B) {
	const files, size = 64, 1 << 20
	content := make([]byte, size)
	for i := range content {
		content[i] = byte(i ^ i>>9)
	}
	b.ReportAllocs()
	b.SetBytes(files * size)
	r := bytes.NewReader(content)
	for b.Loop() {
		w := NewWriter(io.Discard)
		for i := range files {
			r.Reset(content)
			if _, _, err := w.AddFile("base/1/"+string(rune('a'+i%26))+string(rune('a'+i/26)), onlyReader{r}, size, 0o600, mtime); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// Restoring the same partition to disk, with and without fsync.
func BenchmarkExtract(b *testing.B) {
	const files, size = 16, 1 << 20
	var buf bytes.Buffer
	w := NewWriter(&buf)
	content := make([]byte, size)
	for i := range files {
		w.AddFile("base/1/"+string(rune('a'+i)), bytes.NewReader(content), size, 0o600, mtime)
	}
	w.Close()
	for _, fsync := range []bool{false, true} {
		name := "nofsync"
		if fsync {
			name = "fsync"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(files * size)
			for b.Loop() {
				b.StopTimer()
				root, err := os.OpenRoot(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := (&Extractor{Root: root, Fsync: fsync}).Extract(bytes.NewReader(buf.Bytes())); err != nil {
					b.Fatal(err)
				}
				root.Close()
			}
		})
	}
}

func BenchmarkCRC32C(b *testing.B) {
	data := make([]byte, copyBufSize)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	var crc uint32
	for b.Loop() {
		crc = crc32.Update(crc, castagnoli, data)
	}
	_ = crc
}
