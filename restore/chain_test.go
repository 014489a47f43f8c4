package restore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/tarball"
)

func pageEntry(blocks []uint32, fills []byte) ([]byte, uint32) {
	var b bytes.Buffer
	for i, blk := range blocks {
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], blk)
		b.Write(n[:])
		b.Write(bytes.Repeat([]byte{fills[i]}, pgcontrol.PageSize))
	}
	return b.Bytes(), crc32.Checksum(b.Bytes(), crc32.MakeTable(crc32.Castagnoli))
}

// A delta's changed pages land at their blocks, the file ends at the
// delta's size (shorter or longer than the chain had it), what the
// delta's manifest does not list goes, and a damaged entry is refused.
func TestApplyDeltaPages(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "base", "5"), 0o700); err != nil {
		t.Fatal(err)
	}
	rel := filepath.Join(dir, "base", "5", "16384")
	old := bytes.Repeat([]byte{'o'}, 4*pgcontrol.PageSize)
	if err := os.WriteFile(rel, old, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"base/5/16390", "base/5/16390_fsm"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("dropped"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	r := &restorer{root: root, mounts: map[string]*os.Root{}}

	entry, crc := pageEntry([]uint32{0, 2}, []byte{'a', 'c'})
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pf := archive.PagedFile{Path: "base/5/16384", Size: 3 * pgcontrol.PageSize, Mode: 0o600, ModTime: mtime, Pages: 2, CRC32C: crc, Partition: 1}
	m := &archive.Manifest{Files: []tarball.File{{Path: "base", Type: tarball.TypeDir}, {Path: "base/5", Type: tarball.TypeDir}}, Paged: []archive.PagedFile{pf}}
	if err := r.sweep(m); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "base/5/16390")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file the delta does not list survived the sweep: %v", err)
	}
	a := newPageApplier(r, m.Paged)
	if err := a.finish(); err == nil {
		t.Error("finish passed a delta whose paged entry never came")
	}
	if taken, err := a.take("base/5/16384"+archive.PagedSuffix, int64(len(entry)), bytes.NewReader(entry)); !taken || err != nil {
		t.Fatalf("take = %v, %v", taken, err)
	}
	if err := a.finish(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(rel)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Join([][]byte{bytes.Repeat([]byte{'a'}, pgcontrol.PageSize), bytes.Repeat([]byte{'o'}, pgcontrol.PageSize), bytes.Repeat([]byte{'c'}, pgcontrol.PageSize)}, nil)
	if !bytes.Equal(got, want) {
		t.Errorf("file after the delta: %d bytes, not the base's pages with blocks 0 and 2 replaced, cut to 3 pages", len(got))
	}
	if err := r.checkSizes(m); err != nil {
		t.Error(err)
	}
	if info, _ := os.Stat(rel); !info.ModTime().Equal(mtime) {
		t.Errorf("mtime %v, want %v", info.ModTime(), mtime)
	}

	// An entry met twice, one with a flipped byte, one whose page lies
	// beyond the file, and pages of a file the chain lacks are refused.
	if _, err := a.take("base/5/16384"+archive.PagedSuffix, int64(len(entry)), bytes.NewReader(entry)); err == nil {
		t.Error("an entry met twice was applied")
	}
	bad := append([]byte(nil), entry...)
	bad[100] ^= 1
	if err := r.applyPages(pf, int64(len(bad)), bytes.NewReader(bad)); !errors.Is(err, tarball.ErrCorrupt) {
		t.Errorf("flipped byte: %v, want ErrCorrupt", err)
	}
	beyond, bcrc := pageEntry([]uint32{3}, []byte{'x'})
	if err := r.applyPages(archive.PagedFile{Path: pf.Path, Size: pf.Size, Pages: 1, CRC32C: bcrc}, int64(len(beyond)), bytes.NewReader(beyond)); !errors.Is(err, tarball.ErrCorrupt) {
		t.Errorf("page beyond the file: %v, want ErrCorrupt", err)
	}
	if err := r.applyPages(archive.PagedFile{Path: "base/5/99999", Size: pf.Size, Pages: 2, CRC32C: crc}, int64(len(entry)), bytes.NewReader(entry)); err == nil {
		t.Error("pages of a file the chain lacks were applied")
	}
	if taken, _ := a.take("base/5/other", 0, bytes.NewReader(nil)); taken {
		t.Error("an entry the delta does not list was taken")
	}
}
