package compression

import (
	"bytes"
	"io"
	"testing"
)

const benchSize = 16 << 20

// Compress and decompress 16 MiB of PostgreSQL-like pages per codec. MB/s
// is of uncompressed data; allocs show whether a stream's cost is flat.
func BenchmarkCompress(b *testing.B) {
	data := pgLikeData(benchSize)
	for _, c := range allCodecs(b) {
		b.Run(specOf(c), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			var outSize int
			for b.Loop() {
				cw := &countWriter{}
				w, err := c.NewWriter(cw)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.Write(data); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				outSize = cw.n
			}
			b.ReportMetric(float64(outSize)/float64(len(data)), "ratio")
		})
	}
}

func BenchmarkDecompress(b *testing.B) {
	data := pgLikeData(benchSize)
	buf := make([]byte, 256<<10)
	for _, c := range allCodecs(b) {
		b.Run(specOf(c), func(b *testing.B) {
			z := compress(b, c, data)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				r, err := c.NewReader(bytes.NewReader(z))
				if err != nil {
					b.Fatal(err)
				}
				// onlyReader hides WriterTo, as a tar reader pulling from us would.
				n, err := io.CopyBuffer(io.Discard, onlyReader{r}, buf)
				if err != nil || n != int64(len(data)) {
					b.Fatalf("decoded %d bytes: %v", n, err)
				}
				r.Close()
			}
		})
	}
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

type onlyReader struct{ io.Reader }
