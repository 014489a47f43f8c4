package compression

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/s2"
)

// A data chunk whose type byte turns into padding or a skippable chunk
// is an error, not a stream that decodes short (found by FuzzDecode).
func TestFramedStreamRefusesSkippableChunks(t *testing.T) {
	plain := bytes.Repeat([]byte("walnut page "), 10000)
	for _, name := range []string{"s2", "snappy"} {
		c, err := Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		w, _ := c.NewWriter(&b)
		w.Write(plain)
		w.Close()
		for _, typ := range []byte{0x80, 0xa5, 0xfd, 0xfe} {
			damaged := append([]byte(nil), b.Bytes()...)
			damaged[10] = typ // the first data chunk's type, after the stream identifier
			r, err := c.NewReader(bytes.NewReader(damaged))
			if err == nil {
				_, err = io.ReadAll(r)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s, first chunk type %#x: %v, want a corrupt-stream error", name, typ, err)
			}
		}
		r, _ := c.NewReader(bytes.NewReader(b.Bytes()))
		if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s: the undamaged stream: %v", name, err)
		}
	}
}

// The framing format has no end marker: a stream cut at a chunk boundary
// decoded short without an error (found by FuzzDecode). Every cut, at a
// boundary or not, is now a truncated stream, and a chunk after the
// closing index is corrupt.
func TestFramedStreamRefusesEveryCut(t *testing.T) {
	plain := pgLikeData(3 << 20)
	for _, name := range []string{"s2", "snappy"} {
		c, err := Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		w, _ := c.NewWriter(&b)
		w.Write(plain)
		w.Close()
		stream := b.Bytes()
		var boundaries []int
		for at := 0; at < len(stream); at += 4 + int(stream[at+1]) | int(stream[at+2])<<8 | int(stream[at+3])<<16 {
			boundaries = append(boundaries, at)
		}
		if len(boundaries) < 4 {
			t.Fatalf("%s: %d chunks; the data should span several", name, len(boundaries))
		}
		for _, at := range boundaries {
			for _, cut := range []int{at - 1, at, at + 1} {
				if cut < 0 {
					continue
				}
				r, err := c.NewReader(bytes.NewReader(stream[:cut]))
				if err == nil {
					_, err = io.ReadAll(r)
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s cut to %d of %d bytes: %v, want an error", name, cut, len(stream), err)
				}
				var de *DecodeError
				if cut == at && cut > 0 && (!errors.As(err, &de) || !de.Truncated || !errors.Is(err, errNoEndIndex)) {
					t.Fatalf("%s cut at the chunk boundary %d: %v, want a truncated stream without its index", name, cut, err)
				}
			}
		}
		glued := append(append([]byte(nil), stream...), stream...)
		r, _ := c.NewReader(bytes.NewReader(glued))
		if _, err := io.ReadAll(r); !errors.Is(err, ErrCorrupt) || !errors.Is(err, errAfterIndex) {
			t.Errorf("%s: two streams glued: %v, want a chunk after the index refused", name, err)
		}
		// Stock decoders skip the index: a hand restore needs nothing of walnut.
		got, err := io.ReadAll(s2.NewReader(bytes.NewReader(stream)))
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s: the library's plain reader: %v", name, err)
		}
	}
}
