package compression

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// allCodecs is every codec at its default level and at a non-default one,
// so level handling is exercised by the round trips too.
func allCodecs(t testing.TB) []Codec {
	t.Helper()
	var cs []Codec
	for _, spec := range []string{"zstd", "zstd:3", "zstd:19", "lz4", "lz4:9", "s2", "snappy", "gzip", "gzip:1", "none"} {
		c, err := Parse(spec)
		if err != nil {
			t.Fatalf("Parse(%q): %v", spec, err)
		}
		cs = append(cs, c)
	}
	return cs
}

func specOf(c Codec) string {
	if s, ok := c.(interface{ String() string }); ok {
		return s.String()
	}
	return c.Name()
}

func compress(t testing.TB, c Codec, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := c.NewWriter(&buf)
	if err != nil {
		t.Fatalf("%s: NewWriter: %v", specOf(c), err)
	}
	// Uneven writes catch codecs that only work when fed whole blocks.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 100_000)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatalf("%s: Write: %v", specOf(c), err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("%s: Close: %v", specOf(c), err)
	}
	return buf.Bytes()
}

func decompress(c Codec, compressed []byte) ([]byte, error) {
	r, err := c.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return out, err
}

func TestRoundTrip(t *testing.T) {
	inputs := map[string][]byte{
		"empty":          {},
		"small":          []byte("0000000100000000000000A0\n"),
		"compressible":   pgLikeData(5 << 20),
		"incompressible": randomData(3<<20 + 17),
	}
	for _, c := range allCodecs(t) {
		for name, data := range inputs {
			t.Run(specOf(c)+"/"+name, func(t *testing.T) {
				z := compress(t, c, data)
				got, err := decompress(c, z)
				if err != nil {
					t.Fatalf("decompress: %v", err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("round trip changed data: got %d bytes, want %d", len(got), len(data))
				}
				if name == "compressible" && c.Name() != "none" && len(z) > len(data)/2 {
					t.Errorf("compressed %d bytes to %d: codec is not compressing", len(data), len(z))
				}
			})
		}
	}
}

// A pooled zstd encoder must start clean: the second stream written with a
// reused encoder has to decode on its own.
func TestZstdEncoderReuse(t *testing.T) {
	c := Default()
	a := compress(t, c, pgLikeData(1<<20))
	b := compress(t, c, []byte("second stream"))
	for i, z := range [][]byte{a, b} {
		if _, err := decompress(c, z); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	got, _ := decompress(c, b)
	if string(got) != "second stream" {
		t.Fatalf("reused encoder produced %q", got)
	}
}

func TestWriterAfterClose(t *testing.T) {
	w, err := Default().NewWriter(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, errClosed) {
		t.Fatalf("Write after Close: got %v, want errClosed", err)
	}
}

// closeTracker fails the test if a codec closes what it wraps.
type closeTracker struct {
	bytes.Buffer
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestCloseNeverClosesUnderlying(t *testing.T) {
	for _, c := range allCodecs(t) {
		var dst closeTracker
		w, err := c.NewWriter(&dst)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if dst.closed {
			t.Errorf("%s: writer Close closed the destination", specOf(c))
		}
		src := &closeTracker{}
		src.Write(dst.Bytes())
		r, err := c.NewReader(src)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if src.closed {
			t.Errorf("%s: reader Close closed the source", specOf(c))
		}
	}
}

// zstd, lz4 and gzip mark the end of a stream, so a cut-off object must fail
// to decode rather than yield a short result, and say that it is cut off.
// (s2, snappy and none have no end marker; the tar trailer and the
// manifest catch truncation there.)
func TestTruncatedStreamFails(t *testing.T) {
	data := pgLikeData(1 << 20)
	for _, spec := range []string{"zstd", "lz4", "gzip"} {
		c, _ := Parse(spec)
		z := compress(t, c, data)
		for _, cut := range []int{0, 1, 3, 4, 9, len(z) / 2, len(z) - 1} {
			got, err := decompress(c, z[:cut])
			if err == nil {
				t.Errorf("%s cut at %d/%d: decoded %d bytes without error", spec, cut, len(z), len(got))
				continue
			}
			var de *DecodeError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &de) || !de.Truncated ||
				!strings.Contains(err.Error(), "truncated "+spec+" stream") {
				t.Errorf("%s cut at %d/%d: %v; want ErrCorrupt saying the %s stream is truncated", spec, cut, len(z), err, spec)
			}
		}
	}
}

func TestCorruptStreamFails(t *testing.T) {
	data := pgLikeData(1 << 20)
	for _, spec := range []string{"zstd", "lz4", "s2", "snappy", "gzip"} {
		c, _ := Parse(spec)
		z := bytes.Clone(compress(t, c, data))
		z[len(z)/2] ^= 0x55
		got, err := decompress(c, z)
		if err == nil && bytes.Equal(got, data) {
			t.Errorf("%s: flipped byte went unnoticed and data came back intact?", spec)
		} else if err == nil {
			t.Errorf("%s: corrupt stream decoded without error", spec)
		} else if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), spec+" stream") {
			t.Errorf("%s: %v; want ErrCorrupt naming the codec", spec, err)
		}
		// What is not the codec's format at all (the zstd decoder calls
		// it "magic number mismatch").
		if _, err := decompress(c, bytes.Repeat([]byte{0}, 4096)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: zeros decoded as %v; want ErrCorrupt", spec, err)
		}
	}
}

// A reader that fails underneath the decoder (a broken connection) is that
// reader's failure, never the data's: the caller may retry it.
func TestSourceFailureIsNotCorruption(t *testing.T) {
	data := pgLikeData(1 << 20)
	broken := errors.New("connection reset by peer")
	for _, spec := range Names() {
		c, _ := Parse(spec)
		z := compress(t, c, data)
		for _, at := range []int{0, 5, len(z) / 2} {
			src := io.MultiReader(bytes.NewReader(z[:at]), iotest.ErrReader(broken))
			r, err := c.NewReader(src)
			if err == nil {
				_, err = io.Copy(io.Discard, r)
				r.Close()
			}
			if !errors.Is(err, broken) || errors.Is(err, ErrCorrupt) {
				t.Errorf("%s, source failing after %d bytes: %v; want the source's error, not ErrCorrupt", spec, at, err)
			}
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		spec     string
		name     string
		str      string // canonical spec, "" when the codec has no level
		errParts []string
	}{
		{spec: "", name: "zstd", str: "zstd:1"},
		{spec: "zstd", name: "zstd", str: "zstd:1"},
		{spec: " ZSTD ", name: "zstd", str: "zstd:1"},
		{spec: "zstd:3", name: "zstd", str: "zstd:3"},
		{spec: "zstd:22", name: "zstd", str: "zstd:22"},
		{spec: "lz4", name: "lz4", str: "lz4:1"},
		{spec: "lz4:9", name: "lz4", str: "lz4:9"},
		{spec: "s2", name: "s2", str: "s2"},
		{spec: "snappy", name: "snappy", str: "snappy"},
		{spec: "gzip", name: "gzip", str: "gzip:6"},
		{spec: "gzip:1", name: "gzip", str: "gzip:1"},
		{spec: "gzip:9", name: "gzip", str: "gzip:9"},
		{spec: "none", name: "none", str: "none"},
		{spec: "zstd:0", errParts: []string{`"zstd:0"`, "1-22"}},
		{spec: "zstd:23", errParts: []string{`"zstd:23"`, "1-22"}},
		{spec: "zstd:", errParts: []string{`"zstd:"`, "level"}},
		{spec: "zstd:fast", errParts: []string{`"zstd:fast"`, "level"}},
		{spec: "zstd:-1", errParts: []string{`"zstd:-1"`}},
		{spec: "lz4:10", errParts: []string{`"lz4:10"`, "1-9"}},
		{spec: "gzip:0", errParts: []string{`"gzip:0"`, "1-9"}},
		{spec: "s2:3", errParts: []string{`"s2:3"`, "no level"}},
		{spec: "none:1", errParts: []string{`"none:1"`, "no level"}},
		{spec: "lzo", errParts: []string{`"lzo"`, "zstd, lz4, s2, snappy, gzip, none"}},
		{spec: "brotli:5", errParts: []string{`"brotli:5"`, "valid:"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			c, err := Parse(tt.spec)
			if tt.errParts != nil {
				if err == nil {
					t.Fatalf("Parse(%q) = %s, want error", tt.spec, specOf(c))
				}
				for _, part := range tt.errParts {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("error %q does not mention %q", err, part)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.spec, err)
			}
			if c.Name() != tt.name || specOf(c) != tt.str {
				t.Fatalf("Parse(%q) = %s (%s), want %s (%s)", tt.spec, c.Name(), specOf(c), tt.name, tt.str)
			}
		})
	}
}

func TestForKey(t *testing.T) {
	tests := []struct {
		key, codec, base string
	}{
		{"backups/b/part_0001.tar.zst", "zstd", "backups/b/part_0001.tar"},
		{"wal/000000010000000A000000FF-0123456789abcdef.lz4", "lz4", "wal/000000010000000A000000FF-0123456789abcdef"},
		{"backups/b/files.json.s2", "s2", "backups/b/files.json"},
		{"backups/b/files.json.sz", "snappy", "backups/b/files.json"},
		{"x.tar.gz", "gzip", "x.tar"},
		{"backups/b/part_0001.tar", "none", "backups/b/part_0001.tar"},
		{"wal/00000002.history", "none", "wal/00000002.history"},
		{"walnut.json", "none", "walnut.json"},
		{"noext", "none", "noext"},
		{"x.zst.gz", "gzip", "x.zst"},              // only the last extension counts
		{"x.tar.zstd", "none", "x.tar.zstd"},       // not our extension
		{"x.tar.zst.pgp", "none", "x.tar.zst.pgp"}, // crypto strips .pgp first
		{".zst", "none", ".zst"},                   // nothing left to name
		{"", "none", ""},
	}
	for _, tt := range tests {
		c, base := ForKey(tt.key)
		if c.Name() != tt.codec || base != tt.base {
			t.Errorf("ForKey(%q) = %s, %q; want %s, %q", tt.key, c.Name(), base, tt.codec, tt.base)
		}
	}
}

// Every codec's own extension leads back to it.
func TestExtensionsRoundTrip(t *testing.T) {
	for _, name := range Names() {
		c, err := Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		got, base := ForKey("k" + c.Extension())
		if got.Name() != name || base != "k" {
			t.Errorf("ForKey(%q) = %s, %q; want %s, k", "k"+c.Extension(), got.Name(), base, name)
		}
	}
}

func TestNames(t *testing.T) {
	want := []string{"zstd", "lz4", "s2", "snappy", "gzip", "none"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	if Default().Name() != "zstd" {
		t.Fatalf("Default() = %s, want zstd", Default().Name())
	}
}

// requireTool finds a command-line tool, failing instead of skipping when
// WALNUT_TEST_REQUIRE=all (as CI sets it) so interop is never silently lost.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("WALNUT_TEST_REQUIRE") == "all" {
			t.Fatalf("%s not installed and WALNUT_TEST_REQUIRE=all: %v", name, err)
		}
		t.Skipf("%s not installed, interop not checked: %v", name, err)
	}
	return p
}

// Our output must be what the standard tools read, so an operator can
// restore without walnut; and theirs must be what we read.
func TestInteropWithCLI(t *testing.T) {
	data := pgLikeData(3 << 20)
	tools := []struct{ spec, tool string }{
		{"zstd", "zstd"},
		{"zstd:19", "zstd"},
		{"gzip", "gzip"},
		{"lz4", "lz4"},
		{"lz4:9", "lz4"},
	}
	for _, tt := range tools {
		t.Run(tt.spec, func(t *testing.T) {
			bin := requireTool(t, tt.tool)
			c, _ := Parse(tt.spec)
			cmd := exec.Command(bin, "-d", "-c")
			cmd.Stdin = bytes.NewReader(compress(t, c, data))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s -d: %v: %s", tt.tool, err, stderr.String())
			}
			if !bytes.Equal(out, data) {
				t.Fatalf("%s -d gave %d bytes, want %d identical", tt.tool, len(out), len(data))
			}

			cmd = exec.Command(bin, "-c")
			cmd.Stdin = bytes.NewReader(data)
			theirs, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s -c: %v", tt.tool, err)
			}
			got, err := decompress(c, theirs)
			if err != nil {
				t.Fatalf("decoding %s's output: %v", tt.tool, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("decoding %s's output gave %d bytes, want %d identical", tt.tool, len(got), len(data))
			}
		})
	}
}

// The snappy codec must write the Snappy framing format (stream identifier
// chunk first), not S2's, or snappy tools will not read it.
func TestSnappyFraming(t *testing.T) {
	c, _ := Parse("snappy")
	z := compress(t, c, []byte("hello"))
	if magic := "\xff\x06\x00\x00sNaPpY"; !bytes.HasPrefix(z, []byte(magic)) {
		t.Fatalf("snappy stream starts %q, want %q", z[:min(len(z), 10)], magic)
	}
}
