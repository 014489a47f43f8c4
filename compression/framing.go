package compression

import (
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/s2"
)

// errSkippableChunk: the decoders skip such chunks in silence, so a data
// chunk whose type byte was flipped into one would vanish from the output
// without an error.
var errSkippableChunk = errors.New("a padding or skippable chunk, which walnut never writes: a chunk type byte is damaged")

// errNoEndIndex: the framing format has no end marker of its own, so a
// stream cut at a chunk boundary would decode short without an error
// (found by FuzzDecode). walnut's writers end every stream with S2's index
// chunk, which stock S2 and Snappy decoders skip, and the guard requires it.
var errNoEndIndex = errors.New("the stream ends without its closing index chunk")

// errAfterIndex: the index closes a stream; a chunk after it means damage
// (a data chunk's type byte turned into the index's) or two streams glued.
var errAfterIndex = errors.New("a chunk after the closing index chunk")

// chunkGuard passes an S2 or Snappy framed stream through while reading its
// chunk headers (a type byte and a 3-byte little-endian length). walnut's
// writers emit the stream identifier (0xff), data chunks and, last, S2's
// index chunk (0x99, in the skippable range). The guard fails at any other
// padding (0xfe) or skippable chunk (0x80-0xfd), at a chunk after the
// index, and at an end of the stream anywhere but right after the index.
type chunkGuard struct {
	r        io.Reader
	left     int // bytes of the current chunk's body not yet passed
	hdr      [4]byte
	nhdr     int
	sawIndex bool
	err      error
}

func (g *chunkGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	for b := p[:n]; len(b) > 0; {
		if g.left > 0 {
			k := min(g.left, len(b))
			g.left -= k
			b = b[k:]
			continue
		}
		k := copy(g.hdr[g.nhdr:], b)
		g.nhdr += k
		b = b[k:]
		if g.nhdr < len(g.hdr) {
			continue
		}
		g.nhdr = 0
		switch t := g.hdr[0]; {
		case g.sawIndex:
			g.err = errAfterIndex
		case t == s2.ChunkTypeIndex:
			g.sawIndex = true
		case t >= 0x80 && t != 0xff:
			g.err = errSkippableChunk
		}
		if g.err != nil {
			return n, g.err
		}
		g.left = int(g.hdr[1]) | int(g.hdr[2])<<8 | int(g.hdr[3])<<16
	}
	if err == io.EOF && (!g.sawIndex || g.left > 0 || g.nhdr > 0) {
		err = io.ErrUnexpectedEOF
		if g.left == 0 && g.nhdr == 0 {
			err = fmt.Errorf("%w: %w", io.ErrUnexpectedEOF, errNoEndIndex)
		}
	}
	return n, err
}

// Stream identifiers of the two framings (the framing format's first
// chunk).
const (
	s2StreamID     = "\xff\x06\x00\x00S2sTwO"
	snappyStreamID = "\xff\x06\x00\x00sNaPpY"
)

// newFramedWriter returns an S2 writer that ends its stream with the index
// chunk chunkGuard requires. The library writes the stream identifier
// only before a data chunk, so the stream of no data would be the index
// alone, which its own reader refuses: identFirst puts the identifier in
// front.
func newFramedWriter(w io.Writer, streamID string, opts ...s2.WriterOption) io.WriteCloser {
	opts = append(opts, s2.WriterConcurrency(1), s2.WriterAddIndex())
	return s2.NewWriter(&identFirst{w: w, id: streamID}, opts...)
}

// identFirst makes sure a framed stream starts with its identifier.
type identFirst struct {
	w       io.Writer
	id      string
	started bool
}

func (f *identFirst) Write(p []byte) (int, error) {
	if !f.started && len(p) > 0 {
		f.started = true
		if p[0] != 0xff {
			if _, err := io.WriteString(f.w, f.id); err != nil {
				return 0, err
			}
		}
	}
	return f.w.Write(p)
}
