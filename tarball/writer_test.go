package tarball

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestAddFileShrunkIsPadded(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	content := bytes.Repeat([]byte("page"), 250) // 1000 bytes
	f, shrunk, err := w.AddFile("base/1/1234", bytes.NewReader(content), 8192, 0o600, mtime)
	if err != nil {
		t.Fatal(err)
	}
	if !shrunk {
		t.Error("shrunk = false for a reader 7192 bytes short")
	}
	want := append(bytes.Clone(content), make([]byte, 8192-1000)...)
	if f.Size != 8192 || f.CRC32C != crcOf(want) {
		t.Errorf("entry size %d crc %08x, want 8192 %08x", f.Size, f.CRC32C, crcOf(want))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readOne(t, buf.Bytes()); !bytes.Equal(got, want) {
		t.Fatalf("stored %d bytes, want content padded with zeros to 8192", len(got))
	}
}

func TestAddFileGrownIsCut(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	content := bytes.Repeat([]byte{7}, 5000)
	// OneByteReader makes the cut happen across many short reads.
	f, shrunk, err := w.AddFile("f", iotest.OneByteReader(bytes.NewReader(content)), 4096, 0o600, mtime)
	if err != nil {
		t.Fatal(err)
	}
	if shrunk {
		t.Error("shrunk = true for a file that grew")
	}
	if f.CRC32C != crcOf(content[:4096]) {
		t.Errorf("crc %08x, want crc of the first 4096 bytes %08x", f.CRC32C, crcOf(content[:4096]))
	}
	w.Close()
	if got := readOne(t, buf.Bytes()); !bytes.Equal(got, content[:4096]) {
		t.Fatalf("stored %d bytes, want the first 4096", len(got))
	}
}

func TestAddFileCRCMatchesContent(t *testing.T) {
	for _, size := range []int{0, 1, 511, 512, copyBufSize, copyBufSize + 1, 3*copyBufSize + 7} {
		content := make([]byte, size)
		for i := range content {
			content[i] = byte(i*7 + i>>8)
		}
		w := NewWriter(io.Discard)
		f, _, err := w.AddFile("f", bytes.NewReader(content), int64(size), 0o644, mtime)
		if err != nil {
			t.Fatal(err)
		}
		if f.CRC32C != crcOf(content) {
			t.Errorf("size %d: crc %08x, want %08x", size, f.CRC32C, crcOf(content))
		}
	}
}

func TestWriterRefusesBadNames(t *testing.T) {
	for _, name := range []string{"", "/etc/passwd", "../x", "a/../../x", "a/..", ".", "./"} {
		w := NewWriter(io.Discard)
		if _, _, err := w.AddFile(name, strings.NewReader("x"), 1, 0o600, mtime); !errors.Is(err, ErrUnsafe) {
			t.Errorf("AddFile(%q): got %v, want ErrUnsafe", name, err)
		}
		if _, err := w.AddDir(name, 0o700, mtime); !errors.Is(err, ErrUnsafe) {
			t.Errorf("AddDir(%q): got %v, want ErrUnsafe", name, err)
		}
	}
}

// A read error leaves half an entry in the stream, so the writer must
// refuse to go on rather than produce an archive that looks whole.
func TestWriterErrorIsSticky(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	boom := errors.New("disk on fire")
	_, _, err := w.AddFile("base/1/1", io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)), 100, 0o600, mtime)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "base/1/1") {
		t.Fatalf("got %v, want the read error naming the file", err)
	}
	if _, err := w.AddDir("d", 0o700, mtime); err == nil {
		t.Error("AddDir after a failed AddFile succeeded")
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failed AddFile succeeded")
	}
}

func TestWrittenAndClose(t *testing.T) {
	var buf closeTracker
	w := NewWriter(&buf)
	if w.Written() != 0 {
		t.Fatalf("Written() = %d before anything", w.Written())
	}
	if _, _, err := w.AddFile("a", bytes.NewReader(make([]byte, 10000)), 10000, 0o600, mtime); err != nil {
		t.Fatal(err)
	}
	if w.Written() < 10000 || w.Written() != int64(buf.Len()) {
		t.Errorf("Written() = %d, buffer has %d", w.Written(), buf.Len())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Written() != int64(buf.Len()) || buf.Len()%512 != 0 {
		t.Errorf("after Close: Written() = %d, buffer has %d", w.Written(), buf.Len())
	}
	if buf.closed {
		t.Error("Close closed the underlying writer")
	}
}

// Manifest mtimes must equal what tar stores, so a restore can be compared
// with the manifest.
func TestModTimeTruncatedToSeconds(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	in := time.Date(2024, 1, 2, 3, 4, 5, 999_000_000, time.UTC)
	f, err := w.AddDir("d", 0o700, in)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	h, err := tar.NewReader(&buf).Next()
	if err != nil {
		t.Fatal(err)
	}
	if !f.ModTime.Equal(h.ModTime) {
		t.Fatalf("manifest mtime %v, tar mtime %v", f.ModTime, h.ModTime)
	}
}

type closeTracker struct {
	bytes.Buffer
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

// readOne returns the data of the single entry in a tar.
func readOne(t *testing.T, b []byte) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
