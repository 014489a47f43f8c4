package basebackup

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
)

// testPage is a page whose header PostgreSQL would accept, with lsn and
// a body that tells pages apart.
func testPage(lsn pgcontrol.LSN, fill byte) []byte {
	p := bytes.Repeat([]byte{fill}, pgcontrol.PageSize)
	le := binary.LittleEndian
	le.PutUint32(p[0:], uint32(lsn>>32))
	le.PutUint32(p[4:], uint32(lsn))
	le.PutUint16(p[12:], 40)
	le.PutUint16(p[14:], 8000)
	le.PutUint16(p[16:], 8192)
	le.PutUint16(p[18:], pgcontrol.PageSize|4)
	return p
}

func writePages(t *testing.T, pages ...[]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "16384")
	if err := os.WriteFile(p, slices.Concat(pages...), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A delta stores the pages at or after the base's start LSN, and those
// it cannot date (all zeros, torn); a file whose every page changed, or
// that is not made of pages, is stored whole.
func TestChangedPages(t *testing.T) {
	const since = pgcontrol.LSN(0x2_0000_0000)
	torn := testPage(since-1, 7)
	binary.LittleEndian.PutUint16(torn[18:], 0) // no page size/version: not a page header
	p := writePages(t,
		testPage(since-1, 1),             // unchanged
		testPage(since, 2),               // changed at the base's start: may not be in the base
		testPage(since+100, 3),           // changed
		make([]byte, pgcontrol.PageSize), // extended, never written
		torn,                             // cannot be dated
		testPage(since-0x1_0000_0000, 6)) // unchanged
	blocks, whole, err := changedPages(p, 6*pgcontrol.PageSize, since)
	if err != nil || whole || !slices.Equal(blockList(blocks), []uint32{1, 2, 3, 4}) || blocks.count != 4 {
		t.Fatalf("changedPages = %v, whole %v, %v; want blocks 1-4", blockList(blocks), whole, err)
	}
	all := writePages(t, testPage(since, 1), testPage(since+1, 2))
	if _, whole, err := changedPages(all, 2*pgcontrol.PageSize, since); err != nil || !whole {
		t.Errorf("every page changed: whole %v, %v; want the file stored whole", whole, err)
	}
	odd := writePages(t, testPage(since-1, 1), []byte("x"))
	if _, whole, _ := changedPages(odd, pgcontrol.PageSize+1, since); !whole {
		t.Error("a file that is not whole pages is not stored whole")
	}
	// The walk saw a size the file no longer has: stored whole, which
	// copes with a file that shrinks while read.
	if _, whole, _ := changedPages(p, 8*pgcontrol.PageSize, since); !whole {
		t.Error("a file shorter than the walk saw is not stored whole")
	}

	// The entry holds block number and page per changed block; a page
	// gone since (the file shrank) reads as zeros.
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set := &pageSet{bits: make([]uint64, 1)}
	set.add(2)
	set.add(9)
	got, err := io.ReadAll(newPageReader(f, set))
	if err != nil || len(got) != 2*archive.PageRecord {
		t.Fatalf("page entry: %d bytes, %v", len(got), err)
	}
	if binary.LittleEndian.Uint32(got) != 2 || !bytes.Equal(got[4:archive.PageRecord], testPage(since+100, 3)) {
		t.Error("first record is not block 2 as on disk")
	}
	second := got[archive.PageRecord:]
	if binary.LittleEndian.Uint32(second) != 9 || !bytes.Equal(second[4:], make([]byte, pgcontrol.PageSize)) {
		t.Error("a block beyond the end is not stored as zeros")
	}
}

func TestIsDatabaseDir(t *testing.T) {
	for name, want := range map[string]bool{
		"base/5": true, "base/16390": true, "pg_tblspc/16385/PG_15_202209061/16390": true,
		"base": false, "global": false, "base/pgsql_tmp": false, "pg_tblspc/16385/PG_15_202209061": false,
		"pg_tblspc/16385/PG_15_202209061/16390/16391": false, "base/5/16384": false, "pg_xact": false,
	} {
		if got := isDatabaseDir(name); got != want {
			t.Errorf("isDatabaseDir(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestPagedCandidate(t *testing.T) {
	for name, want := range map[string]bool{
		"base/5/16384": true, "base/5/16384.1": true, "global/1262": true,
		"pg_tblspc/16385/PG_15_202209061/5/16390": true,
		"base/5/16384_fsm":                        false, "base/5/16384_vm": false, "base/5/16384_init": false,
		"base/5/PG_VERSION": false, "global/pg_filenode.map": false, "pg_xact/0000": false,
		"pg_multixact/offsets/0000": false, "16384": false,
	} {
		if got := pagedCandidate(name); got != want {
			t.Errorf("pagedCandidate(%q) = %v, want %v", name, got, want)
		}
	}
}

func blockList(s *pageSet) []uint32 {
	var out []uint32
	if s == nil {
		return nil
	}
	for b, ok := s.next(0); ok; b, ok = s.next(b + 1) {
		out = append(out, b)
	}
	return out
}

// The set finds its blocks across word boundaries, the last block of a
// word and the first of the next included.
func TestPageSet(t *testing.T) {
	s := &pageSet{bits: make([]uint64, 4)}
	want := []uint32{0, 63, 64, 130, 255}
	for _, b := range want {
		s.add(b)
	}
	if got := blockList(s); !slices.Equal(got, want) || s.count != len(want) {
		t.Errorf("blocks %v (count %d), want %v", got, s.count, want)
	}
	if b, ok := s.next(65); !ok || b != 130 {
		t.Errorf("next(65) = %d, %v; want 130", b, ok)
	}
	if _, ok := s.next(256); ok {
		t.Error("next past the end found a block")
	}
}
