package compression

import (
	"errors"
	"io"
)

// errSkippableChunk: the decoders skip such chunks in silence, so a data
// chunk whose type byte was flipped into one would vanish from the output
// without an error.
var errSkippableChunk = errors.New("a padding or skippable chunk, which walnut never writes: a chunk type byte is damaged")

// chunkGuard passes an S2 or Snappy framed stream through while reading its
// chunk headers (a type byte and a 3-byte little-endian length), and fails
// at a padding (0xfe) or reserved skippable chunk (0x80-0xfd). walnut's
// writers emit only the stream identifier (0xff) and data chunks.
type chunkGuard struct {
	r    io.Reader
	left int // bytes of the current chunk's body not yet passed
	hdr  [4]byte
	nhdr int
	err  error
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
		if t := g.hdr[0]; t >= 0x80 && t != 0xff {
			g.err = errSkippableChunk
			return n, g.err
		}
		g.left = int(g.hdr[1]) | int(g.hdr[2])<<8 | int(g.hdr[3])<<16
	}
	return n, err
}
