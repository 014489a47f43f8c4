package pgcontrol

import (
	"fmt"
	"testing"
)

const (
	mib = 1 << 20
	gib = 1 << 30
)

func TestWALFileNameAndParse(t *testing.T) {
	tests := []struct {
		tli     uint32
		segNo   uint64
		segSize uint64
		want    string
	}{
		{1, 1, 16 * mib, "000000010000000000000001"},
		// 256 segments of 16 MiB per xlogid: FF is the last, then the xlogid turns over.
		{1, 0xFF, 16 * mib, "0000000100000000000000FF"},
		{1, 0x100, 16 * mib, "000000010000000100000000"},
		{1, 0xAFF, 16 * mib, "000000010000000A000000FF"},
		{2, 0xB00, 16 * mib, "000000020000000B00000000"},
		// 1 GiB segments: 4 per xlogid, so the last part only goes to 3.
		{1, 3, gib, "000000010000000000000003"},
		{1, 4, gib, "000000010000000100000000"},
		{1, 7, gib, "000000010000000100000003"},
		// 64 MiB: 64 per xlogid.
		{3, 0x3F, 64 * mib, "00000003000000000000003F"},
		{3, 0x40, 64 * mib, "000000030000000100000000"},
		// 1 MiB: 4096 per xlogid.
		{1, 0x1000, mib, "000000010000000100000000"},
		{0xFFFFFFFF, 0xFFFFFFFF_FF, 16 * mib, "FFFFFFFFFFFFFFFF000000FF"},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s/%d", tt.want, tt.segSize)
		t.Run(name, func(t *testing.T) {
			if got := WALFileName(tt.tli, tt.segNo, tt.segSize); got != tt.want {
				t.Fatalf("WALFileName(%d, %#x, %d) = %q, want %q", tt.tli, tt.segNo, tt.segSize, got, tt.want)
			}
			tli, segNo, err := ParseWALFileName(tt.want, tt.segSize)
			if err != nil || tli != tt.tli || segNo != tt.segNo {
				t.Fatalf("ParseWALFileName(%q, %d) = %d, %#x, %v; want %d, %#x", tt.want, tt.segSize, tli, segNo, err, tt.tli, tt.segNo)
			}
		})
	}
}

func TestParseWALFileNameErrors(t *testing.T) {
	tests := []struct {
		name    string
		segSize uint64
	}{
		{"000000010000000000000100", 16 * mib}, // segment part beyond FF
		{"000000010000000000000004", gib},      // beyond 3 for 1 GiB
		{"000000000000000000000001", 16 * mib}, // timeline 0
		{"00000001000000000000000a", 16 * mib}, // lower case
		{"00000001000000000000001", 16 * mib},  // 23 digits
		{"000000010000000000000001.partial", 16 * mib},
		{"000000010000000000000001", 0},
		{"000000010000000000000001", 3 * mib},
		{"000000010000000000000001", 2 * gib},
	}
	for _, tt := range tests {
		if tli, segNo, err := ParseWALFileName(tt.name, tt.segSize); err == nil {
			t.Errorf("ParseWALFileName(%q, %d) = %d, %d, want error", tt.name, tt.segSize, tli, segNo)
		}
	}
}

func TestSegmentMath(t *testing.T) {
	tests := []struct {
		lsn     LSN
		segSize uint64
		segNo   uint64
		start   LSN
		name    string // on timeline 1
	}{
		{0x1500718, 16 * mib, 1, 0x1000000, "000000010000000000000001"},
		{0x4500718, 64 * mib, 1, 0x4000000, "000000010000000000000001"},
		{0x16_B374D848, 16 * mib, 0x16B3, 0x16_B3000000, "0000000100000016000000B3"},
		{0x16_B374D848, gib, 0x5A, 0x16_80000000, "000000010000001600000002"},
		{0x0_FFFFFFFF, 16 * mib, 0xFF, 0xFF000000, "0000000100000000000000FF"},
		{0x1_00000000, 16 * mib, 0x100, 0x1_00000000, "000000010000000100000000"},
	}
	for _, tt := range tests {
		segNo := SegmentNumber(tt.lsn, tt.segSize)
		if segNo != tt.segNo {
			t.Errorf("SegmentNumber(%v, %d) = %#x, want %#x", tt.lsn, tt.segSize, segNo, tt.segNo)
		}
		if got := SegmentStart(segNo, tt.segSize); got != tt.start {
			t.Errorf("SegmentStart(%#x, %d) = %v, want %v", segNo, tt.segSize, got, tt.start)
		}
		if got := WALFileName(1, segNo, tt.segSize); got != tt.name {
			t.Errorf("WALFileName(1, %#x, %d) = %q, want %q", segNo, tt.segSize, got, tt.name)
		}
	}
}

func TestWALFileNameInvalidSegmentSizePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("WALFileName with segment size 0 did not panic")
		}
	}()
	WALFileName(1, 1, 0)
}

func TestValidSegmentSize(t *testing.T) {
	for _, s := range []uint64{mib, 2 * mib, 16 * mib, 64 * mib, gib} {
		if !ValidSegmentSize(s) {
			t.Errorf("ValidSegmentSize(%d) = false", s)
		}
	}
	for _, s := range []uint64{0, 1, mib / 2, 3 * mib, 2 * gib, 16*mib + 1} {
		if ValidSegmentSize(s) {
			t.Errorf("ValidSegmentSize(%d) = true", s)
		}
	}
}

func TestFileNameKinds(t *testing.T) {
	const (
		wal = 1 << iota
		history
		backup
		partial
	)
	tests := []struct {
		name string
		kind int // 0: not archivable
	}{
		{"000000010000000A000000FF", wal},
		{"00000002.history", history},
		{"000000010000000000000002.00000028.backup", backup},
		{"000000010000000000000002.partial", partial},
		{"0000000A0000000000000002.partial", partial},
		{"000000010000000a000000ff", 0},
		{"000000010000000A000000F", 0},
		{"000000010000000A000000FF0", 0},
		{"00000002.HISTORY", 0},
		{"0000002.history", 0},
		{"0000000g.history", 0},
		{"000000010000000000000002.0000028.backup", 0},
		{"000000010000000000000002.00000028", 0},
		{"000000010000000000000002.00000028.backup.partial", 0},
		{"000000010000000000000002.00000028.partial", 0},
		{"00000001000000000000002.partial", 0},
		{"000000010000000000000002.partial.tmp", 0},
		{"archive_status", 0},
		{"", 0},
		{"../00000002.history", 0},
	}
	for _, tt := range tests {
		got := 0
		if IsWALFileName(tt.name) {
			got |= wal
		}
		if IsHistoryFileName(tt.name) {
			got |= history
		}
		if IsBackupHistoryFileName(tt.name) {
			got |= backup
		}
		if IsPartialFileName(tt.name) {
			got |= partial
		}
		if got != tt.kind {
			t.Errorf("%q: kinds %04b, want %04b", tt.name, got, tt.kind)
		}
		if IsArchivableName(tt.name) != (tt.kind != 0) {
			t.Errorf("IsArchivableName(%q) = %v", tt.name, !(tt.kind != 0))
		}
	}
}

func TestHistoryFileName(t *testing.T) {
	for tli, want := range map[uint32]string{1: "00000001.history", 2: "00000002.history", 0x1A: "0000001A.history", 0xFFFFFFFF: "FFFFFFFF.history"} {
		got := HistoryFileName(tli)
		if got != want {
			t.Errorf("HistoryFileName(%d) = %q, want %q", tli, got, want)
		}
		if !IsHistoryFileName(got) {
			t.Errorf("IsHistoryFileName(%q) = false", got)
		}
	}
}
