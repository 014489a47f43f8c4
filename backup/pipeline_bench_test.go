package backup

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/tarball"
)

// The backup pipeline end to end, without a server: files on disk ->
// tar -> zstd -> pipe -> a store that only counts, and the restore's
// mirror. MB/s is of the files' bytes.

const (
	benchFiles    = 32
	benchFileSize = 4 << 20
)

// heapPages imitates a freshly loaded table: tuples with random keys
// beside repetitive text in the first half of each 8 KiB page, zeros in
// the rest.
func heapPages(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}
	out := make([]byte, n)
	for p := 0; p+8192 <= n; p += 8192 {
		page := out[p : p+8192]
		binary.LittleEndian.PutUint64(page, r.Uint64())
		for off := 24; off < len(page)/2; off = (off + 7) &^ 7 {
			binary.LittleEndian.PutUint32(page[off:], uint32(r.IntN(100000)))
			binary.LittleEndian.PutUint64(page[off+4:], r.Uint64())
			off += 12
			off += copy(page[off:], words[r.IntN(len(words))])
		}
	}
	return out
}

// benchDataDir writes a minimal data directory holding benchFiles
// relation files.
func benchDataDir(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "base", "5"), 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	for i := range benchFiles {
		if err := os.WriteFile(filepath.Join(dir, "base", "5", fmt.Sprint(16384+i)), heapPages(uint64(i), benchFileSize), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// countingStore keeps nothing: Put reads its source to the end.
type countingStore struct{ storage.Store }

func (countingStore) Put(_ context.Context, _ string, r io.Reader, _ int64) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// BenchmarkBackupPipeline packs a data directory into partitions with one
// and two workers, reading the files from disk (page cache after the
// first run) as backup-push does.
func BenchmarkBackupPipeline(b *testing.B) {
	dir := benchDataDir(b)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(benchFiles * benchFileSize)
			for b.Loop() {
				p := &packer{store: countingStore{}, enc: encoding{codec: compression.Default()}, name: "bench",
					limit: DefaultPartitionSize, log: slog.New(slog.DiscardHandler)}
				if err := p.run(b.Context(), dir, nil, "PG_15_", workers); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPutStream is one partition's stream with the disk left out:
// tar -> zstd:1 -> pipe -> Put.
func BenchmarkPutStream(b *testing.B) {
	data := heapPages(1, benchFileSize)
	mtime := time.Now()
	b.ReportAllocs()
	b.SetBytes(benchFiles * benchFileSize)
	for b.Loop() {
		_, err := putStream(b.Context(), countingStore{}, "k", encoding{codec: compression.Default()}, func(w io.Writer) error {
			tw := tarball.NewWriter(w)
			for i := range benchFiles {
				if _, _, err := tw.AddFile(fmt.Sprintf("base/5/%d", i), byteReader(data), int64(len(data)), 0o600, mtime); err != nil {
					return err
				}
			}
			return tw.Close()
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestorePartition fetches, decompresses and extracts one
// partition into a fresh directory, each file fsynced, as backup-fetch does.
func BenchmarkRestorePartition(b *testing.B) {
	store := mem.New()
	enc := encoding{codec: compression.Default()}
	data := heapPages(1, benchFileSize)
	mtime := time.Now().Truncate(time.Second)
	expect := map[string]tarball.File{}
	key := partitionKey("bench", 1, enc.ext())
	_, err := putStream(b.Context(), store, key, enc, func(w io.Writer) error {
		tw := tarball.NewWriter(w)
		for i := range benchFiles {
			f, _, err := tw.AddFile(fmt.Sprintf("f%d", i), byteReader(data), int64(len(data)), 0o600, mtime)
			if err != nil {
				return err
			}
			expect[f.Path] = f
		}
		return tw.Close()
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(benchFiles * benchFileSize)
	for b.Loop() {
		b.StopTimer()
		root, err := os.OpenRoot(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := extractObject(b.Context(), store, nil, key, root, nil, expect, nil, false); err != nil {
			b.Fatal(err)
		}
		root.Close()
	}
}

// byteReader hides bytes.Reader's WriterTo, as a file would.
func byteReader(b []byte) io.Reader { return &sliceReader{b: b} }

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
