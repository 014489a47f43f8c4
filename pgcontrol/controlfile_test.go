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

// withVersions returns the PG 15 fixture with other version numbers and a
// CRC over the first crcAt bytes, as a server of that format would write it.
func withVersions(t *testing.T, control, catalog uint32, crcAt int) []byte {
	t.Helper()
	b := readFixture(t, "pg15_plain.control")
	binary.LittleEndian.PutUint32(b[8:], control)
	binary.LittleEndian.PutUint32(b[12:], catalog)
	binary.LittleEndian.PutUint32(b[crcAt:], crc32.Checksum(b[:crcAt], castagnoli))
	return b
}

// Outside 12 to 18 a pg_control is refused with one line that names the
// range, whatever its CRC; a newer major is named as such.
func TestParseControlFileUnsupportedVersion(t *testing.T) {
	tests := []struct {
		name             string
		control, catalog uint32
		crcAt            int
		want             string
	}{
		{"PG 11", 1100, 201809051, 288, "pg_control_version 1100 is older than PostgreSQL 12's (1201); walnut supports PostgreSQL 12 to 18"},
		{"PG 10", 1002, 201707211, 288, "older than PostgreSQL 12's"},
		{"a newer format", 1900, 202606301, 296, "pg_control_version 1900 is newer than PostgreSQL 18's (1800): the cluster is of a newer major; walnut supports PostgreSQL 12 to 18"},
		{"PG 19 development, format unchanged", 1800, 202507011, 292, "catalog version 202507011 is newer than PostgreSQL 18's (202506291): a development build or a newer major; walnut supports PostgreSQL 12 to 18"},
		{"PG 17 development, old format", 1300, 202307072, 288, "catalog version 202307072 is not that of a PostgreSQL release with pg_control_version 1300"},
		{"zero", 0, 0, 288, "unknown pg_control_version 0: not a pg_control of PostgreSQL 12 to 18"},
		// A big-endian pg_control shows up as an absurd version number.
		{"big-endian 1300", 335872000, 202209061, 288, "unknown pg_control_version 335872000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseControlFile(withVersions(t, tt.control, tt.catalog, tt.crcAt))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

// PG 18 moved the CRC from 288 to 292; a PG 18 file with its CRC where
// PG 17 kept it is corrupt, not PG 17.
func TestParseControlFilePG18CRCOffset(t *testing.T) {
	if _, err := ParseControlFile(withVersions(t, 1800, 202506291, 292)); err != nil {
		t.Fatalf("PG 18 with its CRC at 292: %v", err)
	}
	if _, err := ParseControlFile(withVersions(t, 1800, 202506291, 288)); !errors.Is(err, ErrCRCMismatch) {
		t.Fatalf("PG 18 with the CRC at 288: err = %v, want ErrCRCMismatch", err)
	}
	if _, err := ParseControlFile(withVersions(t, 1800, 202506291, 292)[:295]); err == nil || !strings.Contains(err.Error(), "needs at least 296") {
		t.Fatalf("PG 18 cut at 295 bytes: err = %v, want a length error", err)
	}
}

func TestMajorVersion(t *testing.T) {
	tests := []struct {
		control, catalog uint32
		want             int // 0: error
	}{
		{1201, 201909212, 12},
		{1201, 201809052, 12}, // first PG 12 development catalog
		{1201, 201809051, 0},  // PG 11's
		{1300, 201909213, 13}, // first PG 13 development catalog
		{1300, 202007201, 13},
		{1300, 202007202, 14},
		{1300, 202107181, 14},
		{1300, 202209061, 15},
		{1300, 202307071, 16},
		{1300, 202307072, 0}, // a PG 17 development build before the format bump
		{1300, 201909212, 0},
		{1700, 202406281, 17},
		{1700, 202406282, 0},
		{1800, 202406282, 18},
		{1800, 202506291, 18},
		{1800, 202506292, 0}, // PG 19 development
		{1100, 201809051, 0},
	}
	for _, tt := range tests {
		got, ok := majorVersion(tt.control, tt.catalog)
		if got != tt.want || ok != (tt.want != 0) {
			t.Errorf("majorVersion(%d, %d) = %d, %v; want %d", tt.control, tt.catalog, got, ok, tt.want)
		}
	}
}

func TestCheckServerVersion(t *testing.T) {
	tests := []struct {
		num  int
		want string // "": supported
	}{
		{120000, ""},
		{120022, ""},
		{150013, ""},
		{180004, ""},
		{189999, ""},
		{190000, "PostgreSQL 19 is not supported: walnut supports PostgreSQL 12 to 18"},
		{200001, "PostgreSQL 20 is not supported"},
		{110022, "PostgreSQL 11 is not supported: walnut supports PostgreSQL 12 to 18"},
		{90624, "PostgreSQL 9.6 is not supported"},
	}
	for _, tt := range tests {
		err := CheckServerVersion(tt.num)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckServerVersion(%d) = %v, want %q", tt.num, err, tt.want)
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
