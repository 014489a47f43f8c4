package restore

import (
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/tarball"
)

const (
	benchFiles    = 32
	benchFileSize = 4 << 20
)

// BenchmarkRestorePartition fetches, decompresses and extracts one
// partition into a fresh directory, each file fsynced, as backup-fetch does.
func BenchmarkRestorePartition(b *testing.B) {
	store := mem.New()
	enc := archive.Encoding{Codec: compression.Default()}
	data := fixture.HeapPages(1, benchFileSize)
	mtime := time.Now().Truncate(time.Second)
	expect := map[string]tarball.File{}
	key := archive.PartitionKey("bench", 1, enc.Ext())
	_, err := archive.PutStream(b.Context(), store, key, enc, func(w io.Writer) error {
		tw := tarball.NewWriter(w)
		for i := range benchFiles {
			f, _, err := tw.AddFile(fmt.Sprintf("f%d", i), fixture.PlainReader(data), int64(len(data)), 0o600, mtime)
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
		r := &restorer{store: store, root: root}
		if err := r.extract(b.Context(), key, expect, nil, false); err != nil {
			b.Fatal(err)
		}
		root.Close()
	}
}
