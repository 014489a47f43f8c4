package basebackup

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage"
)

// The backup pipeline end to end, without a server: files on disk ->
// tar -> zstd -> pipe -> a store that only counts, and the restore's
// mirror. MB/s is of the files' bytes.

const (
	benchFiles    = 32
	benchFileSize = 4 << 20
)

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
		if err := os.WriteFile(filepath.Join(dir, "base", "5", fmt.Sprint(16384+i)), fixture.HeapPages(uint64(i), benchFileSize), 0o600); err != nil {
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
				p := &packer{store: countingStore{}, enc: archive.Encoding{Codec: compression.Default()}, name: "bench",
					limit: DefaultPartitionSize, log: slog.New(slog.DiscardHandler)}
				if err := p.run(b.Context(), dir, nil, "PG_15_", workers); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
