package archive

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/tarball"
)

const (
	benchFiles    = 32
	benchFileSize = 4 << 20
)

// countingStore keeps nothing: Put reads its source to the end.
type countingStore struct{ storage.Store }

func (countingStore) Put(_ context.Context, _ string, r io.Reader, _ int64) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// BenchmarkPutStream is one partition's stream with the disk left out:
// tar -> zstd:1 -> pipe -> Put.
func BenchmarkPutStream(b *testing.B) {
	data := fixture.HeapPages(1, benchFileSize)
	mtime := time.Now()
	b.ReportAllocs()
	b.SetBytes(benchFiles * benchFileSize)
	for b.Loop() {
		_, err := PutStream(b.Context(), countingStore{}, "k", Encoding{Codec: compression.Default()}, func(w io.Writer) error {
			tw := tarball.NewWriter(w)
			for i := range benchFiles {
				if _, _, err := tw.AddFile(fmt.Sprintf("base/5/%d", i), fixture.PlainReader(data), int64(len(data)), 0o600, mtime); err != nil {
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
