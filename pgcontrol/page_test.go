package pgcontrol

import (
	"encoding/binary"
	"testing"
)

// page builds a page header as bufpage.h lays it out.
func page(lsn LSN, lower, upper, special, sizeVersion uint16) []byte {
	p := make([]byte, PageSize)
	le := binary.LittleEndian
	le.PutUint32(p[0:], uint32(lsn>>32))
	le.PutUint32(p[4:], uint32(lsn))
	le.PutUint16(p[12:], lower)
	le.PutUint16(p[14:], upper)
	le.PutUint16(p[16:], special)
	le.PutUint16(p[18:], sizeVersion)
	return p
}

func TestPageLSN(t *testing.T) {
	lsn, _ := ParseLSN("16/B374D848")
	good := page(lsn, 40, 8000, 8192, PageSize|4)
	if got, ok := PageLSN(good); !ok || got != lsn {
		t.Fatalf("PageLSN = %v, %v; want %v", got, ok, lsn)
	}
	btree := page(lsn, 40, 7000, 8176, PageSize|4) // special space at the end
	if _, ok := PageLSN(btree); !ok {
		t.Error("page with special space refused")
	}
	for name, p := range map[string][]byte{
		"all zero":        make([]byte, PageSize),
		"short":           good[:4096],
		"layout version":  page(lsn, 40, 8000, 8192, PageSize|3),
		"block size":      page(lsn, 40, 8000, 8192, 16384|4),
		"lower in header": page(lsn, 8, 8000, 8192, PageSize|4),
		"lower > upper":   page(lsn, 8100, 8000, 8192, PageSize|4),
		"upper > special": page(lsn, 40, 8192, 8176, PageSize|4),
		"special beyond":  page(lsn, 40, 8000, 9000, PageSize|4),
		"special align":   page(lsn, 40, 8000, 8190, PageSize|4),
	} {
		if _, ok := PageLSN(p); ok {
			t.Errorf("%s: accepted as a page", name)
		}
	}
}

func TestPageChangedSince(t *testing.T) {
	start, _ := ParseLSN("1/2000028")
	for _, c := range []struct {
		lsn  string
		want bool
	}{{"1/2000027", false}, {"1/2000028", true}, {"2/0", true}, {"0/0", false}} {
		l, _ := ParseLSN(c.lsn)
		if got := PageChangedSince(page(l, 40, 8000, 8192, PageSize|4), start); got != c.want {
			t.Errorf("page at %s since %s: %v, want %v", c.lsn, start, got, c.want)
		}
	}
	if !PageChangedSince(make([]byte, PageSize), start) {
		t.Error("a page without a header is not stored")
	}
}
