package compression

import (
	"fmt"
	"io"
	"strconv"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/pierrec/lz4/v4"
)

// lz4Codec writes the LZ4 frame format that `lz4 -d` reads. Level 1 is the
// fast compressor (as `lz4 -1`); 2-9 pick the library's high-compression
// depths.
type lz4Codec struct{ level int }

// lz4Block is the frame's block size: the library defaults to 4 MiB, and a
// writer or reader holds about two blocks, so 1 MiB keeps a stream near 2 MiB
// at a ratio loss that does not show on page-sized data.
const lz4Block = lz4.Block1Mb

func (lz4Codec) Name() string      { return "lz4" }
func (lz4Codec) Extension() string { return ".lz4" }
func (c lz4Codec) String() string  { return "lz4:" + strconv.Itoa(c.level) }

func (c lz4Codec) NewWriter(w io.Writer) (io.WriteCloser, error) {
	level := lz4.Fast
	if c.level > 1 {
		level = lz4.Level1 << (c.level - 1)
	}
	zw := lz4.NewWriter(w)
	if err := zw.Apply(
		lz4.CompressionLevelOption(level),
		lz4.BlockSizeOption(lz4Block),
		lz4.ConcurrencyOption(1),
	); err != nil {
		return nil, fmt.Errorf("lz4 encoder: %w", err)
	}
	return zw, nil
}

func (lz4Codec) NewReader(r io.Reader) (io.ReadCloser, error) {
	return checked("lz4", true, r, func(r io.Reader) (io.ReadCloser, error) {
		zr := lz4.NewReader(r)
		if err := zr.Apply(lz4.ConcurrencyOption(1)); err != nil {
			return nil, fmt.Errorf("lz4 decoder: %w", err)
		}
		return io.NopCloser(zr), nil
	})
}

// s2Codec writes klauspost's S2 stream format: faster than zstd level 1 at a
// lower ratio, for hosts where CPU is the bottleneck. One goroutine per
// stream for the same reason as zstd.
type s2Codec struct{}

func (s2Codec) Name() string      { return "s2" }
func (s2Codec) Extension() string { return ".s2" }
func (s2Codec) String() string    { return "s2" }

func (s2Codec) NewWriter(w io.Writer) (io.WriteCloser, error) {
	return newFramedWriter(w, s2StreamID), nil
}

func (s2Codec) NewReader(r io.Reader) (io.ReadCloser, error) {
	return checked("s2", true, r, func(r io.Reader) (io.ReadCloser, error) {
		return io.NopCloser(s2.NewReader(&chunkGuard{r: r})), nil
	})
}

// snappyCodec writes the Snappy framing format (what `snzip`/`.sz` tools
// read) through S2's compatibility mode; the S2 reader decodes it.
type snappyCodec struct{}

func (snappyCodec) Name() string      { return "snappy" }
func (snappyCodec) Extension() string { return ".sz" }
func (snappyCodec) String() string    { return "snappy" }

func (snappyCodec) NewWriter(w io.Writer) (io.WriteCloser, error) {
	return newFramedWriter(w, snappyStreamID, s2.WriterSnappyCompat()), nil
}

func (snappyCodec) NewReader(r io.Reader) (io.ReadCloser, error) {
	return checked("snappy", true, r, func(r io.Reader) (io.ReadCloser, error) {
		return io.NopCloser(s2.NewReader(&chunkGuard{r: r})), nil
	})
}

// defaultGzipLevel is gzip's own default, so "gzip" means what `gzip` means.
const defaultGzipLevel = 6

type gzipCodec struct{ level int }

func (gzipCodec) Name() string      { return "gzip" }
func (gzipCodec) Extension() string { return ".gz" }
func (c gzipCodec) String() string  { return "gzip:" + strconv.Itoa(c.level) }

func (c gzipCodec) NewWriter(w io.Writer) (io.WriteCloser, error) {
	zw, err := gzip.NewWriterLevel(w, c.level)
	if err != nil {
		return nil, fmt.Errorf("gzip encoder: %w", err)
	}
	return zw, nil
}

func (gzipCodec) NewReader(r io.Reader) (io.ReadCloser, error) {
	// gzip reads the header here, so a stream too short for one fails now.
	return checked("gzip", true, r, func(r io.Reader) (io.ReadCloser, error) {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		return zr, nil
	})
}
