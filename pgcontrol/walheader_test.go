package pgcontrol

import (
	"encoding/binary"
	"strings"
	"testing"
)

func TestWALSegmentSystemIdentifierRealPG15(t *testing.T) {
	for _, name := range []string{"plain", "seg64", "checksums"} {
		t.Run(name, func(t *testing.T) {
			cd, err := ParseControlFile(readFixture(t, "pg15_"+name+".control"))
			if err != nil {
				t.Fatal(err)
			}
			head := readFixture(t, "pg15_"+name+"_000000010000000000000001.walhead")
			sysid, segSize, err := WALSegmentSystemIdentifier(head)
			if err != nil {
				t.Fatal(err)
			}
			if sysid != cd.SystemIdentifier || segSize != cd.WALSegmentSize {
				t.Fatalf("WAL header says %d/%d, pg_control says %d/%d", sysid, segSize, cd.SystemIdentifier, cd.WALSegmentSize)
			}
			if v, err := WALSegmentPGVersion(head); err != nil || v != 15 {
				t.Fatalf("WALSegmentPGVersion = %d, %v", v, err)
			}
		})
	}
}

// longHeader builds the first 40 bytes of a segment by hand.
func longHeader(magic, info uint16, sysid uint64, segSize uint32) []byte {
	b := make([]byte, 40)
	le := binary.LittleEndian
	le.PutUint16(b[0:], magic)
	le.PutUint16(b[2:], info)
	le.PutUint32(b[4:], 1)         // tli
	le.PutUint64(b[8:], 0x3000000) // pageaddr
	le.PutUint64(b[24:], sysid)    // xlp_sysid
	le.PutUint32(b[32:], segSize)  // xlp_seg_size
	le.PutUint32(b[36:], 8192)     // xlp_xlog_blcksz
	return b
}

func TestWALSegmentSystemIdentifier(t *testing.T) {
	tests := []struct {
		name    string
		head    []byte
		major   int
		wantErr string
	}{
		{"pg12", longHeader(0xD101, 0x0002, 42, 16<<20), 12, ""},
		{"pg13", longHeader(0xD106, 0x0002, 42, 16<<20), 13, ""},
		{"pg14", longHeader(0xD10D, 0x0002, 42, 16<<20), 14, ""},
		{"pg15", longHeader(0xD110, 0x0002, 42, 16<<20), 15, ""},
		{"pg16", longHeader(0xD113, 0x0006, 42, 1<<30), 16, ""}, // XLP_BKP_REMOVABLE too
		{"pg17 continuation", longHeader(0xD116, 0x0003, 42, 1<<20), 17, ""},
		{"pg18", longHeader(0xD118, 0x0002, 42, 16<<20), 18, ""},
		{"pg11 magic", longHeader(0xD098, 0x0002, 42, 16<<20), 0, "unknown magic D098: not a WAL segment from PostgreSQL 12 to 18"},
		{"newer major", longHeader(0xD11A, 0x0002, 42, 16<<20), 0, "magic D11A is newer than PostgreSQL 18's (D118): a segment from a newer major; walnut supports PostgreSQL 12 to 18"},
		{"pg17 development magic", longHeader(0xD115, 0x0002, 42, 16<<20), 0, "unknown magic D115"},
		{"short header", longHeader(0xD110, 0x0000, 42, 16<<20), 15, "no long-header flag"},
		{"bad segment size", longHeader(0xD110, 0x0002, 42, 3<<20), 15, "invalid segment size"},
		{"too short", longHeader(0xD110, 0x0002, 42, 16<<20)[:39], 15, "need 40"},
		{"zeros", make([]byte, 8192), 0, "unknown magic 0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sysid, segSize, err := WALSegmentSystemIdentifier(tt.head)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil || sysid != 42 || segSize != binary.LittleEndian.Uint32(tt.head[32:]) {
				t.Fatalf("got %d, %d, %v", sysid, segSize, err)
			}
			v, err := WALSegmentPGVersion(tt.head)
			if tt.major == 0 {
				if err == nil {
					t.Fatalf("WALSegmentPGVersion = %d, want error", v)
				}
			} else if err != nil || v != tt.major {
				t.Fatalf("WALSegmentPGVersion = %d, %v; want %d", v, err, tt.major)
			}
		})
	}
}
