package compression

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"testing"
)

// lzopOf compresses data with the real lzop, with extra arguments (a level,
// or -F/--crc32 for other checksum flags), as WAL-E ran it.
func lzopOf(t testing.TB, data []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("lzop", append([]string{"-c"}, args...)...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lzop %v: %v", args, err)
	}
	return out
}

func readLzop(b []byte) ([]byte, error) {
	r, err := Lzop().NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func TestLzopReadsWhatLzopWrites(t *testing.T) {
	requireTool(t, "lzop")
	data := pgLikeData(3 << 20) // several of lzop's 256 KiB blocks
	incompressible := make([]byte, 300<<10)
	for i := range incompressible {
		incompressible[i] = byte(i*2654435761>>13) ^ byte(i>>7*31)
	}
	cases := []struct {
		name string
		data []byte
		args []string
	}{
		{"default", data, nil},
		{"level 9 (LZO1X-999)", data, []string{"-9"}},
		{"level 1", data, []string{"-1"}},
		{"crc32 checksums", data, []string{"--crc32"}},
		{"no name", data, []string{"-n"}},
		{"empty", nil, nil},
		{"stored blocks", incompressible, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readLzop(lzopOf(t, c.data, c.args...))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.data) {
				t.Fatalf("decoded %d bytes, want %d (content differs)", len(got), len(c.data))
			}
		})
	}
}

// Every single-byte change of a real lzop file is refused (checksums on
// the header and on every block), and so is every cut.
func TestLzopRefusesDamage(t *testing.T) {
	requireTool(t, "lzop")
	data := pgLikeData(600 << 10)
	good := lzopOf(t, data)
	for _, off := range []int{0, 5, 10, 20, 30, 45, 60, len(good) / 3, len(good) / 2, len(good) - 10} {
		bad := bytes.Clone(good)
		bad[off] ^= 0x41
		got, err := readLzop(bad)
		if err == nil && bytes.Equal(got, data) {
			t.Fatalf("flip at %d: decoded the original anyway (the byte is not covered?)", off)
		}
		if err == nil {
			t.Fatalf("flip at %d: no error, %d bytes of other data", off, len(got))
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip at %d: %v is not ErrCorrupt", off, err)
		}
	}
	for _, n := range []int{0, 4, 9, 30, len(good) / 2, len(good) - 4, len(good) - 1} {
		_, err := readLzop(good[:n])
		var de *DecodeError
		if !errors.As(err, &de) || !de.Truncated {
			t.Fatalf("cut at %d of %d: %v, want a truncated DecodeError", n, len(good), err)
		}
	}
	if _, err := readLzop(append(bytes.Clone(good), 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: %v, want ErrCorrupt", err)
	}
	if _, err := Lzop().NewWriter(io.Discard); err == nil {
		t.Fatal("lzop writer: want an error, walnut never writes lzop")
	}
}

// FuzzLzop: no input makes the reader panic, allocate without bound or
// hand out data without an error that the real lzop would not decode to
// the same bytes; only ErrCorrupt or success come back.
func FuzzLzop(f *testing.F) {
	if _, err := exec.LookPath("lzop"); err == nil {
		f.Add(lzopOf(f, pgLikeData(300<<10)))
		f.Add(lzopOf(f, []byte("hello, WAL-E"), "--crc32", "-9"))
		f.Add(lzopOf(f, nil))
	}
	f.Add(append(bytes.Clone(LzopMagic), 0x10, 0x30, 0x20, 0xa0, 0x09, 0x40, 0x01, 0x05))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Lzop().NewReader(bytes.NewReader(b))
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v: not ErrCorrupt", err)
		}
	})
}
