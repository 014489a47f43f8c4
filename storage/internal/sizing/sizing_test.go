package sizing_test

import (
	"bytes"
	"crypto/md5"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/walnut-pg/walnut/storage/internal/sizing"
)

func data(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7 / 3)
	}
	return b
}

func TestReadHead(t *testing.T) {
	const limit = 100 << 10
	for _, n := range []int{0, 1, 16 << 10, limit - 1, limit, limit + 1, 3 * limit} {
		src := data(n)
		h, err := sizing.ReadHead(bytes.NewReader(src), limit)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		want := src
		if n > limit {
			want = src[:limit+1]
		}
		if h.More != (n > limit) || h.Size != int64(len(want)) {
			t.Errorf("%d bytes: head of %d, more %v; want %d, more %v", n, h.Size, h.More, len(want), n > limit)
		}
		got, _ := io.ReadAll(h.Reader())
		again, _ := io.ReadAll(h.Reader())
		seeked, _ := io.ReadAll(h.ReadSeeker())
		copied := make([]byte, h.Size)
		h.CopyTo(copied)
		sum := md5.Sum(want)
		for what, b := range map[string][]byte{"Reader": got, "Reader again": again, "ReadSeeker": seeked, "CopyTo": copied} {
			if !bytes.Equal(b, want) {
				t.Errorf("%d bytes: %s gives %d bytes, not the head", n, what, len(b))
			}
		}
		if !bytes.Equal(h.MD5(), sum[:]) {
			t.Errorf("%d bytes: MD5 differs", n)
		}
	}
	boom := errors.New("boom")
	if _, err := sizing.ReadHead(io.MultiReader(bytes.NewReader(data(10)), errReader{boom}), limit); !errors.Is(err, boom) {
		t.Errorf("failing source: %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestRewinderAndMeasure(t *testing.T) {
	if sizing.Rewinder(struct{ io.Reader }{bytes.NewReader(nil)}) != nil {
		t.Error("a plain reader is rewindable")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if sizing.Rewinder(pr) != nil {
		t.Error("a pipe is rewindable")
	}
	src := data(1000)
	r := bytes.NewReader(src)
	r.Seek(100, io.SeekStart)
	rewind := sizing.Rewinder(r)
	h, err := sizing.ReadHead(r, 50)
	if err != nil || !h.More {
		t.Fatal(h, err)
	}
	n, err := sizing.Measure(r, h, rewind, nil)
	if err != nil || n != 900 {
		t.Fatalf("Measure = %d, %v; want 900", n, err)
	}
	if rest, _ := io.ReadAll(r); !bytes.Equal(rest, src[100:]) {
		t.Error("the source was not rewound to where it was")
	}
}

func TestBody(t *testing.T) {
	b := &sizing.Body{R: bytes.NewReader(data(10)), Size: 10}
	if n, err := b.Seek(0, io.SeekEnd); n != 10 || err != nil {
		t.Fatalf("Seek end: %d %v", n, err)
	}
	if n, err := b.Seek(0, io.SeekStart); n != 0 || err != nil {
		t.Fatalf("Seek start: %d %v", n, err)
	}
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, data(10)) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if _, err := b.Seek(0, io.SeekStart); !errors.Is(err, sizing.ErrSpent) {
		t.Errorf("rewinding a read body: %v, want ErrSpent", err)
	}
}
