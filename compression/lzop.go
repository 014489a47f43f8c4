package compression

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"hash/crc32"
	"io"

	lzo "github.com/anchore/go-lzo"
)

// LzopMagic opens every lzop file. WAL-E wrote all its objects with
// `lzop -c`, so this is also how a reader tells a plain WAL-E object from
// one gpg encrypted (WAL-E kept the .lzo name for both).
var LzopMagic = []byte{0x89, 'L', 'Z', 'O', 0x00, '\r', '\n', 0x1a, '\n'}

// Header flags of the lzop file format (lzop's conf.h names them F_*).
const (
	lzopAdler32D   = 0x00000001 // checksum of each block's uncompressed data
	lzopAdler32C   = 0x00000002 // ... of its compressed data
	lzopExtraField = 0x00000040
	lzopCRC32D     = 0x00000100
	lzopCRC32C     = 0x00000200
	lzopMultipart  = 0x00000400
	lzopFilter     = 0x00000800
	lzopHeaderCRC  = 0x00001000 // header checksum is CRC-32, not Adler-32
)

// lzopMaxBlock is lzop's own limit on a block's uncompressed size (it
// writes 256 KiB blocks); a larger length is damage, and must not make the
// reader allocate it.
const lzopMaxBlock = 64 << 20

// Lzop reads what `lzop -c` writes: one lzop file of LZO1X blocks. It is
// read-only: walnut never writes lzop, it only reads WAL-E's archives, so
// it is not among the codecs Parse accepts.
func Lzop() Codec { return lzopCodec{} }

type lzopCodec struct{}

func (lzopCodec) Name() string      { return "lzop" }
func (lzopCodec) Extension() string { return ".lzo" }
func (lzopCodec) String() string    { return "lzop" }

func (lzopCodec) NewWriter(io.Writer) (io.WriteCloser, error) {
	return nil, errors.New("lzop: walnut reads WAL-E's lzop objects but never writes them")
}

func (lzopCodec) NewReader(r io.Reader) (io.ReadCloser, error) {
	return checked("lzop", true, r, func(src io.Reader) (io.ReadCloser, error) {
		lr := &lzopReader{r: bufio.NewReaderSize(src, 64<<10)}
		if err := lr.readHeader(); err != nil {
			return nil, err
		}
		return lr, nil
	})
}

type lzopReader struct {
	r       *bufio.Reader
	flags   uint32
	out     []byte // decoded block not yet handed out
	dst     []byte // buffers reused across blocks
	src     []byte
	done    bool
	blockNo int
}

// errLzop makes a format violation a DecodeError through checked: anything
// not io.EOF/ErrUnexpectedEOF is reported as corrupt.
func errLzop(format string, args ...any) error { return fmt.Errorf(format, args...) }

// readFull reads exactly len(b) bytes; a stream that ends first is
// truncated (io.ErrUnexpectedEOF), never a clean end.
func (l *lzopReader) readFull(b []byte) error {
	_, err := io.ReadFull(l.r, b)
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (l *lzopReader) readHeader() error {
	magic := make([]byte, len(LzopMagic))
	if _, err := io.ReadFull(l.r, magic); err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if string(magic) != string(LzopMagic) {
		return errLzop("not an lzop file (no lzop magic at its start)")
	}
	// The header checksum covers every field after the magic up to itself,
	// so the header is read through a tee into both checksums; which one
	// counts is known only once the flags are read.
	ad, cr := adler32.New(), crc32.NewIEEE()
	h := &headerReader{l: l, sums: []hash.Hash32{ad, cr}}
	version, err := h.u16()
	if err != nil {
		return err
	}
	if version < 0x0900 {
		return errLzop("lzop format version %#04x is older than any lzop writes (0x0900)", version)
	}
	if _, err := h.u16(); err != nil { // library version
		return err
	}
	if version >= 0x0940 {
		need, err := h.u16()
		if err != nil {
			return err
		}
		if need > 0x1040 {
			return errLzop("lzop file needs lzop %#04x to extract, newer than this reader", need)
		}
	}
	method, err := h.u8()
	if err != nil {
		return err
	}
	if method < 1 || method > 3 {
		return errLzop("lzop method %d is not one of LZO1X's (1-3)", method)
	}
	if version >= 0x0940 {
		if _, err := h.u8(); err != nil { // level
			return err
		}
	}
	if l.flags, err = h.u32(); err != nil {
		return err
	}
	if l.flags&lzopFilter != 0 {
		return errLzop("lzop file uses a filter, which lzop -c never writes")
	}
	if l.flags&lzopMultipart != 0 {
		return errLzop("multipart lzop file, which lzop -c never writes")
	}
	// mode, mtime (low), and from 0x0940 mtime (high)
	skip := 8
	if version >= 0x0940 {
		skip = 12
	}
	if err := h.skip(skip); err != nil {
		return err
	}
	nameLen, err := h.u8()
	if err != nil {
		return err
	}
	if err := h.skip(int(nameLen)); err != nil {
		return err
	}
	want := ad.Sum32()
	if l.flags&lzopHeaderCRC != 0 {
		want = cr.Sum32()
	}
	var b [4]byte
	if err := l.readFull(b[:]); err != nil {
		return err
	}
	if got := binary.BigEndian.Uint32(b[:]); got != want {
		return errLzop("lzop header checksum %08x, computed %08x", got, want)
	}
	if l.flags&lzopExtraField != 0 {
		if err := l.skipExtra(); err != nil {
			return err
		}
	}
	return nil
}

// skipExtra passes over the optional extra field, whose checksum is
// checked like the header's.
func (l *lzopReader) skipExtra() error {
	var sum hash.Hash32 = adler32.New()
	if l.flags&lzopHeaderCRC != 0 {
		sum = crc32.NewIEEE()
	}
	var b [4]byte
	if err := l.readFull(b[:]); err != nil {
		return err
	}
	sum.Write(b[:])
	n := binary.BigEndian.Uint32(b[:])
	if n > 1<<20 {
		return errLzop("lzop extra field of %d bytes", n)
	}
	if _, err := io.CopyN(sum, l.r, int64(n)); err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if err := l.readFull(b[:]); err != nil {
		return err
	}
	if got := binary.BigEndian.Uint32(b[:]); got != sum.Sum32() {
		return errLzop("lzop extra field checksum %08x, computed %08x", got, sum.Sum32())
	}
	return nil
}

func (l *lzopReader) Read(p []byte) (int, error) {
	for len(l.out) == 0 {
		if l.done {
			return 0, io.EOF
		}
		if err := l.nextBlock(); err != nil {
			return 0, err
		}
	}
	n := copy(p, l.out)
	l.out = l.out[n:]
	return n, nil
}

func (l *lzopReader) u32() (uint32, error) {
	var b [4]byte
	if err := l.readFull(b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

// nextBlock reads one block: its uncompressed length (0 ends the file),
// compressed length, the checksums the header's flags call for, and the
// data, stored as is when it would not compress.
func (l *lzopReader) nextBlock() error {
	l.blockNo++
	dstLen, err := l.u32()
	if err != nil {
		return err
	}
	if dstLen == 0 {
		l.done = true
		// lzop -c writes one file; anything after its end marker is not
		// WAL-E's and would otherwise be ignored.
		if _, err := l.r.ReadByte(); err != io.EOF {
			if err != nil {
				return err
			}
			return errLzop("data after the lzop end marker")
		}
		return nil
	}
	if dstLen > lzopMaxBlock {
		return errLzop("lzop block %d claims %d bytes, more than lzop's limit", l.blockNo, dstLen)
	}
	srcLen, err := l.u32()
	if err != nil {
		return err
	}
	if srcLen == 0 || srcLen > dstLen {
		return errLzop("lzop block %d: %d compressed bytes for %d", l.blockNo, srcLen, dstLen)
	}
	var dAdler, dCRC, cAdler, cCRC uint32
	read := func(flag uint32, v *uint32) error {
		if l.flags&flag == 0 {
			return nil
		}
		var err error
		*v, err = l.u32()
		return err
	}
	if err := read(lzopAdler32D, &dAdler); err != nil {
		return err
	}
	if err := read(lzopCRC32D, &dCRC); err != nil {
		return err
	}
	compressed := srcLen < dstLen
	if compressed {
		if err := read(lzopAdler32C, &cAdler); err != nil {
			return err
		}
		if err := read(lzopCRC32C, &cCRC); err != nil {
			return err
		}
	}
	if cap(l.src) < int(srcLen) {
		l.src = make([]byte, srcLen)
	}
	src := l.src[:srcLen]
	if err := l.readFull(src); err != nil {
		return err
	}
	out := src
	if compressed {
		if l.flags&lzopAdler32C != 0 && adler32.Checksum(src) != cAdler {
			return errLzop("lzop block %d: compressed data fails its Adler-32 checksum", l.blockNo)
		}
		if l.flags&lzopCRC32C != 0 && crc32.ChecksumIEEE(src) != cCRC {
			return errLzop("lzop block %d: compressed data fails its CRC-32 checksum", l.blockNo)
		}
		if cap(l.dst) < int(dstLen) {
			l.dst = make([]byte, dstLen)
		}
		out = l.dst[:dstLen]
		n, err := lzo.Decompress(src, out)
		if err != nil {
			return errLzop("lzop block %d: %v", l.blockNo, err)
		}
		if n != int(dstLen) {
			return errLzop("lzop block %d decodes to %d bytes, not %d", l.blockNo, n, dstLen)
		}
	}
	if l.flags&lzopAdler32D != 0 && adler32.Checksum(out) != dAdler {
		return errLzop("lzop block %d: data fails its Adler-32 checksum", l.blockNo)
	}
	if l.flags&lzopCRC32D != 0 && crc32.ChecksumIEEE(out) != dCRC {
		return errLzop("lzop block %d: data fails its CRC-32 checksum", l.blockNo)
	}
	l.out = out
	return nil
}

func (l *lzopReader) Close() error { return nil }

// headerReader reads header fields while summing them.
type headerReader struct {
	l    *lzopReader
	sums []hash.Hash32
}

func (h *headerReader) read(n int) ([]byte, error) {
	b := make([]byte, n)
	if err := h.l.readFull(b); err != nil {
		return nil, err
	}
	for _, s := range h.sums {
		s.Write(b)
	}
	return b, nil
}

func (h *headerReader) u8() (uint8, error) {
	b, err := h.read(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (h *headerReader) u16() (uint16, error) {
	b, err := h.read(2)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(b), nil
}

func (h *headerReader) u32() (uint32, error) {
	b, err := h.read(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

func (h *headerReader) skip(n int) error {
	_, err := h.read(n)
	return err
}
