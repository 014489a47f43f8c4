package pgcontrol

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testdataDir = "../testdata/pgcontrol"

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The pg15_* fixtures were written by initdb 15 on this project's build
// machine; the .controldata.txt beside each is pg_controldata's output for
// it, taken with LC_ALL=C TZ=UTC.
func TestParseControlFileRealPG15(t *testing.T) {
	tests := []struct {
		name         string
		sysid        uint64
		checkpoint   LSN
		segSize      uint32
		checksums    uint32
		firstSegment string
	}{
		{"plain", 7712503529336374445, 0x1500718, 16 << 20, 0, "000000010000000000000001"},
		{"seg64", 7712503532762006715, 0x4500718, 64 << 20, 0, "000000010000000000000001"},
		{"checksums", 7712503536896681182, 0x17414F8, 16 << 20, 1, "000000010000000000000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cd, err := ParseControlFile(readFixture(t, "pg15_"+tt.name+".control"))
			if err != nil {
				t.Fatal(err)
			}
			// The values pg_controldata printed, as literals, so a regenerated
			// fixture cannot silently change what is being tested.
			if cd.PGVersion != 15 || cd.PGControlVersion != 1300 || cd.CatalogVersion != 202209061 {
				t.Errorf("versions: %d %d %d", cd.PGVersion, cd.PGControlVersion, cd.CatalogVersion)
			}
			if cd.SystemIdentifier != tt.sysid {
				t.Errorf("system identifier %d, want %d", cd.SystemIdentifier, tt.sysid)
			}
			if cd.CheckpointLSN != tt.checkpoint || cd.Redo != tt.checkpoint {
				t.Errorf("checkpoint %v redo %v, want %v", cd.CheckpointLSN, cd.Redo, tt.checkpoint)
			}
			if cd.TimelineID != 1 || cd.PrevTimelineID != 1 {
				t.Errorf("timelines %d %d", cd.TimelineID, cd.PrevTimelineID)
			}
			if cd.WALSegmentSize != tt.segSize || cd.DataChecksumVersion != tt.checksums {
				t.Errorf("segment size %d checksums %d", cd.WALSegmentSize, cd.DataChecksumVersion)
			}
			if cd.State != StateShutdowned || cd.State.String() != "shut down" {
				t.Errorf("state %d %q", cd.State, cd.State)
			}
			if cd.BlockSize != 8192 || cd.WALBlockSize != 8192 {
				t.Errorf("block sizes %d %d", cd.BlockSize, cd.WALBlockSize)
			}
			if got := WALFileName(cd.TimelineID, SegmentNumber(cd.Redo, uint64(cd.WALSegmentSize)), uint64(cd.WALSegmentSize)); got != tt.firstSegment {
				t.Errorf("REDO WAL file %s, want %s", got, tt.firstSegment)
			}
			out := readFixture(t, "pg15_"+tt.name+".controldata.txt")
			checkAgainstControldata(t, cd, parseControldataOutput(t, string(out)), time.UTC)
		})
	}
}

func TestParseControlFileCRCMismatch(t *testing.T) {
	orig := readFixture(t, "pg15_plain.control")
	// Every byte the CRC covers, and the CRC itself, must be caught.
	for _, off := range []int{0, 8, 40, 228, 287, 288, 291} {
		b := append([]byte(nil), orig...)
		b[off] ^= 0x01
		_, err := ParseControlFile(b)
		if off == 8 {
			// Flipping the version makes it unknown before the CRC is looked at.
			if err == nil || !strings.Contains(err.Error(), "unknown pg_control_version 1301") {
				t.Errorf("flip at %d: err = %v, want unknown version", off, err)
			}
			continue
		}
		if !errors.Is(err, ErrCRCMismatch) {
			t.Errorf("flip at %d: err = %v, want ErrCRCMismatch", off, err)
		}
	}
	// Bytes after the CRC are not covered: PostgreSQL ignores them too.
	b := append([]byte(nil), orig...)
	b[4000] = 0xFF
	if _, err := ParseControlFile(b); err != nil {
		t.Errorf("change after the CRC: %v", err)
	}
}

func TestParseControlFileTruncated(t *testing.T) {
	orig := readFixture(t, "pg15_plain.control")
	for _, n := range []int{0, 11, 12, 100, 288, 291} {
		_, err := ParseControlFile(orig[:n])
		if err == nil || !strings.Contains(err.Error(), "too short") && !strings.Contains(err.Error(), "needs at least 292") {
			t.Errorf("%d bytes: err = %v, want a length error", n, err)
		}
	}
	// The struct alone, without PostgreSQL's zero fill to 8192, is enough.
	if _, err := ParseControlFile(orig[:292]); err != nil {
		t.Errorf("292 bytes: %v", err)
	}
}

func TestParseControlFileUnknownVersion(t *testing.T) {
	for _, v := range []uint32{1100, 1002, 1800, 0} {
		b := readFixture(t, "pg15_plain.control")
		binary.LittleEndian.PutUint32(b[8:], v)
		binary.LittleEndian.PutUint32(b[288:], crc32.Checksum(b[:288], castagnoli))
		_, err := ParseControlFile(b)
		if err == nil || !strings.Contains(err.Error(), "unknown pg_control_version") {
			t.Errorf("version %d: err = %v", v, err)
		}
	}
	// A big-endian pg_control shows up as an absurd version number.
	b := readFixture(t, "pg15_plain.control")
	binary.BigEndian.PutUint32(b[8:], 1300)
	if _, err := ParseControlFile(b); err == nil || !strings.Contains(err.Error(), "unknown pg_control_version 335872000") {
		t.Errorf("big-endian version: err = %v", err)
	}
}

func TestMajorVersion(t *testing.T) {
	tests := []struct {
		control, catalog uint32
		want             int // 0: error
	}{
		{1201, 201909212, 12},
		{1300, 201909213, 13}, // first PG 13 development catalog
		{1300, 202007201, 13},
		{1300, 202007202, 14},
		{1300, 202107181, 14},
		{1300, 202209061, 15},
		{1300, 202307071, 16},
		{1300, 202307072, 0}, // a PG 17 development build before the format bump
		{1300, 201909212, 0},
		{1700, 202406281, 17},
		{1800, 202506291, 0},
	}
	for _, tt := range tests {
		got, ok := majorVersion(tt.control, tt.catalog)
		if got != tt.want || ok != (tt.want != 0) {
			t.Errorf("majorVersion(%d, %d) = %d, %v; want %d", tt.control, tt.catalog, got, ok, tt.want)
		}
	}
}

func TestDBStateString(t *testing.T) {
	want := []string{"starting up", "shut down", "shut down in recovery", "shutting down", "in crash recovery", "in archive recovery", "in production"}
	for i, w := range want {
		if got := DBState(i).String(); got != w {
			t.Errorf("DBState(%d) = %q, want %q", i, got, w)
		}
	}
	if got := DBState(7).String(); got != "unrecognized status code" {
		t.Errorf("DBState(7) = %q", got)
	}
}

func TestParseControlFileBadSegmentSize(t *testing.T) {
	b := readFixture(t, "pg15_plain.control")
	binary.LittleEndian.PutUint32(b[228:], 3<<20)
	binary.LittleEndian.PutUint32(b[288:], crc32.Checksum(b[:288], castagnoli))
	if _, err := ParseControlFile(b); err == nil || !strings.Contains(err.Error(), "invalid WAL segment size") {
		t.Errorf("err = %v", err)
	}
}
