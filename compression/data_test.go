package compression

import (
	"encoding/binary"
	"math/rand/v2"
)

// pgLikeData imitates heap pages: an 8 KiB page whose first half holds
// tuples (pseudo-random keys next to repetitive text) and whose second half
// is free space, zeros, as in a freshly loaded table.
func pgLikeData(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}
	out := make([]byte, 0, n+8192)
	page := make([]byte, 8192)
	for len(out) < n {
		clear(page)
		binary.LittleEndian.PutUint64(page, r.Uint64()) // LSN
		off := 24
		for off < len(page)/2 {
			binary.LittleEndian.PutUint32(page[off:], uint32(r.IntN(100000)))
			binary.LittleEndian.PutUint64(page[off+4:], r.Uint64())
			off += 12
			off += copy(page[off:], words[r.IntN(len(words))])
			off += copy(page[off:], words[r.IntN(len(words))])
			off = (off + 7) &^ 7
		}
		out = append(out, page...)
	}
	return out[:n]
}

// randomData is incompressible.
func randomData(n int) []byte {
	r := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}
