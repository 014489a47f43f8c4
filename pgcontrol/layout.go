package pgcontrol

import (
	"fmt"
	"strconv"
)

// controlLayout gives the byte offsets of the ControlFileData fields walnut
// reads, for one pg_control_version.
//
// Where the numbers come from: the ControlFileData and CheckPoint structs in
// src/include/catalog/pg_control.h of PostgreSQL's REL_12_STABLE to
// REL_18_STABLE branches, laid out by the C compiler on a 64-bit
// little-endian machine (uint64, XLogRecPtr, pg_time_t and double aligned to
// 8; uint32, int, enum to 4; bool is 1 byte). Every offset is checked
// against a real server of each major: e2e/versions_test.go compares each
// field parsed from a running and a cleanly stopped cluster's pg_control
// with what that server reports through pg_control_system(),
// pg_control_checkpoint(), pg_control_recovery() and pg_control_init().
//
//	field                          1201 (PG12)  1300 (PG13-16)  1700 (PG17)  1800 (PG18)
//	system_identifier                   0            0              0            0
//	pg_control_version                  8            8              8            8
//	catalog_version_no                 12           12             12           12
//	state                              16           16             16           16
//	time                               24           24             24           24
//	checkPoint                         32           32             32           32
//	checkPointCopy (CheckPoint)        40           40             40           40
//	  .redo                            40           40             40           40
//	  .ThisTimeLineID                  48           48             48           48
//	  .PrevTimeLineID                  52           52             52           52
//	  .fullPageWrites                  56           56             56           56
//	  .wal_level (PG17 on)              -            -             60           60
//	  .nextXid (FullTransactionId)     64           64             64           64
//	  .time                           104          104            104          104
//	unloggedLSN                       128          128            128          128
//	minRecoveryPoint                  136          136            136          136
//	minRecoveryPointTLI               144          144            144          144
//	backupStartPoint                  152          152            152          152
//	backupEndPoint                    160          160            160          160
//	backupEndRequired                 168          168            168          168
//	wal_level                         172          172            172          172
//	maxAlign                          204          204            204          204
//	floatFormat                       208          208            208          208
//	blcksz                            216          216            216          216
//	relseg_size                       220          220            220          220
//	xlog_blcksz                       224          224            224          224
//	xlog_seg_size                     228          228            228          228
//	float4ByVal (PG12 only)           248            -              -            -
//	float8ByVal                       249          248            248          248
//	data_checksum_version             252          252            252          252
//	default_char_signedness (PG18)      -            -              -          256
//	mock_authentication_nonce         256          256            256          257
//	crc                               288          288            288          292
//
// The formats differ, but before PG 18 not at the offsets we read: PG 13
// dropped float4ByVal, whose byte vanished into the padding before the
// 4-aligned data_checksum_version; PG 17 added wal_level to CheckPoint,
// where it fills the 4 padding bytes after fullPageWrites, so the 88-byte
// CheckPoint and everything after it stayed put. PG 18 added the 1-byte
// default_char_signedness after data_checksum_version, which pushes the
// 32-byte nonce to 257 and the 4-aligned crc from 288 to 292: the CRC then
// covers 292 bytes, not 288.
type controlLayout struct {
	systemIdentifier    int
	pgControlVersion    int
	catalogVersion      int
	state               int
	time                int
	checkPoint          int
	redo                int
	thisTimeLineID      int
	prevTimeLineID      int
	checkPointTime      int
	minRecoveryPoint    int
	minRecoveryPointTLI int
	backupStartPoint    int
	backupEndPoint      int
	backupEndRequired   int
	blockSize           int
	walBlockSize        int
	walSegmentSize      int
	dataChecksumVersion int
	crc                 int // offsetof(ControlFileData, crc): the CRC covers every byte before it
}

// layout1300 is shared by PG 12 to 17; see the table above for why.
var layout1300 = controlLayout{
	systemIdentifier:    0,
	pgControlVersion:    8,
	catalogVersion:      12,
	state:               16,
	time:                24,
	checkPoint:          32,
	redo:                40,
	thisTimeLineID:      48,
	prevTimeLineID:      52,
	checkPointTime:      104,
	minRecoveryPoint:    136,
	minRecoveryPointTLI: 144,
	backupStartPoint:    152,
	backupEndPoint:      160,
	backupEndRequired:   168,
	blockSize:           216,
	walBlockSize:        224,
	walSegmentSize:      228,
	dataChecksumVersion: 252,
	crc:                 288,
}

// layout1800 is PG 18's: only the CRC moved.
var layout1800 = func() controlLayout {
	l := layout1300
	l.crc = 292
	return l
}()

var controlLayouts = map[uint32]controlLayout{
	1201: layout1300,
	1300: layout1300,
	1700: layout1300,
	1800: layout1800,
}

// MinMajor and MaxMajor are the PostgreSQL major versions walnut supports:
// it knows their pg_control, WAL and backup formats and is tested against a
// real server of each. Anything outside is refused, never guessed at.
const (
	MinMajor = 12
	MaxMajor = 18
)

// Supported names the range for error messages.
const Supported = "PostgreSQL 12 to 18"

// release is one major version: PG_CONTROL_VERSION (pg_control.h) and
// CATALOG_VERSION_NO (catversion.h) on its REL_x_STABLE branch. Both are
// also what each real server reports through pg_control_system(), which
// the version suite checks.
type release struct {
	major          int
	controlVersion uint32
	catalog        uint32
}

// releases is in order. PG 11 is not supported; its catalog version is
// only the lower bound of PG 12's.
var releases = []release{
	{11, 1100, 201809051},
	{12, 1201, 201909212},
	{13, 1300, 202007201},
	{14, 1300, 202107181},
	{15, 1300, 202209061},
	{16, 1300, 202307071},
	{17, 1700, 202406281},
	{18, 1800, 202506291},
}

// majorVersion derives the PostgreSQL major version from the two version
// numbers in pg_control. pg_control_version 1300 spans four majors, so
// majors are told apart by catalog version: a major's development and beta
// catalog versions are all above the previous major's release value and at
// most its own. A catalog version above the last release's belongs to a
// development build of the next major, whose formats may already differ
// even where pg_control_version did not change yet.
func majorVersion(controlVersion, catalogVersion uint32) (int, bool) {
	for i := 1; i < len(releases); i++ {
		r := releases[i]
		if r.controlVersion == controlVersion && catalogVersion > releases[i-1].catalog && catalogVersion <= r.catalog {
			return r.major, true
		}
	}
	return 0, false
}

// latest is the newest supported release.
var latest = releases[len(releases)-1]

// CheckServerVersion refuses a server_version_num outside MinMajor to
// MaxMajor, with one line naming the server's major and the range.
func CheckServerVersion(num int) error {
	major := num / 10000
	switch {
	case major > MaxMajor:
		return fmt.Errorf("PostgreSQL %d is not supported: walnut supports %s, and a newer major's WAL, pg_control and backup formats are unknown to it", major, Supported)
	case major < MinMajor:
		name := strconv.Itoa(major)
		if major < 10 {
			name = fmt.Sprintf("%d.%d", major, num/100%100)
		}
		return fmt.Errorf("PostgreSQL %s is not supported: walnut supports %s", name, Supported)
	}
	return nil
}
