package compression

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Memory, not speed, bounds these choices: a backup runs a few streams at
// once inside a process that must stay under ~40 MB RSS.
//
// Encoder: one goroutine per stream (WithEncoderConcurrency(1)); streams
// already run in parallel, so in-stream concurrency would only multiply
// buffers. Measured at level 1, an encoder's heap is 1.75 MiB for windows
// of 128 to 512 KiB and 2.7 MiB at 1 MiB, while the ratio does not move:
// 0.298 on PostgreSQL-like pages from 256 KiB to 8 MiB windows, 0.0956 on
// a segment of pgbench WAL from 256 KiB to 4 MiB. Pages repeat within a
// page, WAL records within a few pages, not megabytes apart. At 512 KiB,
// WithLowerEncoderMem (a history buffer of one window, not two) takes it
// to 1.22 MiB at the same CPU per byte (measured on the same data). wal-push's
// pool runs one encoder per file at once: at 8, what this saves on each
// is what keeps it under 40 MB.
//
// Decoder: WithDecoderConcurrency(1) decodes synchronously with no goroutines
// or read-ahead, and WithDecoderLowmem(true) grows buffers on demand instead
// of allocating for the largest possible block (measured: 1.8 vs 1.9 MiB per
// stream of ours, ~15% slower, still far faster than the disk it feeds).
// WithDecoderMaxWindow refuses frames whose window would make us allocate
// more than zstdMaxDecodeWindow; the `zstd` tool stays below it up to
// level 19 without --long, so an operator's recompressed file still reads.
const (
	zstdWindow          = 512 << 10
	zstdMaxDecodeWindow = 32 << 20
)

type zstdCodec struct {
	level int // zstd CLI level, 1-22
	pool  *sync.Pool
}

// zstdPools keeps one encoder pool per library speed: creating an encoder
// allocates its tables and history, which dominates compressing a small
// object such as a WAL history file.
var zstdPools sync.Map // zstd.EncoderLevel -> *sync.Pool

func newZstd(level int) zstdCodec {
	speed := zstd.EncoderLevelFromZstd(level)
	p, _ := zstdPools.LoadOrStore(speed, &sync.Pool{})
	return zstdCodec{level: level, pool: p.(*sync.Pool)}
}

func (zstdCodec) Name() string               { return "zstd" }
func (zstdCodec) Extension() string          { return ".zst" }
func (c zstdCodec) String() string           { return "zstd:" + strconv.Itoa(c.level) }
func (c zstdCodec) speed() zstd.EncoderLevel { return zstd.EncoderLevelFromZstd(c.level) }

func (c zstdCodec) NewWriter(w io.Writer) (io.WriteCloser, error) {
	if enc, ok := c.pool.Get().(*zstd.Encoder); ok {
		enc.Reset(w)
		return &zstdWriter{enc: enc, pool: c.pool}, nil
	}
	enc, err := zstd.NewWriter(w,
		zstd.WithEncoderLevel(c.speed()),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithLowerEncoderMem(true),
	)
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	return &zstdWriter{enc: enc, pool: c.pool}, nil
}

func (zstdCodec) NewReader(r io.Reader) (io.ReadCloser, error) {
	return checked("zstd", true, r, func(r io.Reader) (io.ReadCloser, error) {
		dec, err := zstd.NewReader(r,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxDecodeWindow),
		)
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		return &zstdReader{dec: dec}, nil
	})
}

var errClosed = errors.New("compression stream already closed")

// zstdWriter hands its encoder back to the pool on Close, so a closed
// writer must refuse further use rather than write into someone else's stream.
type zstdWriter struct {
	enc  *zstd.Encoder
	pool *sync.Pool
}

func (z *zstdWriter) Write(p []byte) (int, error) {
	if z.enc == nil {
		return 0, errClosed
	}
	return z.enc.Write(p)
}

func (z *zstdWriter) ReadFrom(r io.Reader) (int64, error) {
	if z.enc == nil {
		return 0, errClosed
	}
	return z.enc.ReadFrom(r)
}

func (z *zstdWriter) Close() error {
	if z.enc == nil {
		return nil
	}
	enc := z.enc
	z.enc = nil
	if err := enc.Close(); err != nil {
		// An encoder that failed to write may hold a sticky error; drop it.
		return err
	}
	enc.Reset(nil)
	z.pool.Put(enc)
	return nil
}

type zstdReader struct{ dec *zstd.Decoder }

func (z *zstdReader) Read(p []byte) (int, error) {
	if z.dec == nil {
		return 0, errClosed
	}
	return z.dec.Read(p)
}

func (z *zstdReader) WriteTo(w io.Writer) (int64, error) {
	if z.dec == nil {
		return 0, errClosed
	}
	return z.dec.WriteTo(w)
}

func (z *zstdReader) Close() error {
	if z.dec != nil {
		z.dec.Close()
		z.dec = nil
	}
	return nil
}
