package compression

import (
	"bytes"
	"errors"
	"io"
	"testing"
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
