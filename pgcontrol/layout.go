package pgcontrol

// controlLayout gives the byte offsets of the ControlFileData fields walnut
// reads, for one pg_control_version.
//
// Where the numbers come from: the ControlFileData and CheckPoint structs in
// src/include/catalog/pg_control.h of PostgreSQL's REL_12_STABLE to
// REL_17_STABLE branches, laid out by the C compiler on a 64-bit
// little-endian machine (uint64, XLogRecPtr, pg_time_t and double aligned to
// 8; uint32, int, enum to 4; bool is 1 byte). The PG 15 offsets were checked
// byte by byte against a pg_control written by initdb 15 and the values
// pg_controldata printed for it (testdata/pgcontrol).
//
//	field                          1201 (PG12)  1300 (PG13-16)  1700 (PG17)
//	system_identifier                   0            0              0
//	pg_control_version                  8            8              8
//	catalog_version_no                 12           12             12
//	state                              16           16             16
//	time                               24           24             24
//	checkPoint                         32           32             32
//	checkPointCopy (CheckPoint)        40           40             40
//	  .redo                            40           40             40
//	  .ThisTimeLineID                  48           48             48
//	  .PrevTimeLineID                  52           52             52
//	  .fullPageWrites                  56           56             56
//	  .wal_level (PG17 only)            -            -             60
//	  .nextXid (FullTransactionId)     64           64             64
//	  .time                           104          104            104
//	unloggedLSN                       128          128            128
//	minRecoveryPoint                  136          136            136
//	minRecoveryPointTLI               144          144            144
//	backupStartPoint                  152          152            152
//	backupEndPoint                    160          160            160
//	backupEndRequired                 168          168            168
//	wal_level                         172          172            172
//	maxAlign                          204          204            204
//	floatFormat                       208          208            208
//	blcksz                            216          216            216
//	relseg_size                       220          220            220
//	xlog_blcksz                       224          224            224
//	xlog_seg_size                     228          228            228
//	float4ByVal (PG12 only)           248            -              -
//	float8ByVal                       249          248            248
//	data_checksum_version             252          252            252
//	mock_authentication_nonce         256          256            256
//	crc                               288          288            288
//
// The formats differ, but not at the offsets we read: PG 13 dropped
// float4ByVal, whose byte vanished into the padding before the 4-aligned
// data_checksum_version; PG 17 added wal_level to CheckPoint, where it fills
// the 4 padding bytes after fullPageWrites, so the 88-byte CheckPoint and
// everything after it stayed put. The table is kept per version anyway so
// that a future format that does move things is one new entry.
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

var controlLayouts = map[uint32]controlLayout{
	1201: layout1300,
	1300: layout1300,
	1700: layout1300,
}

// Catalog version numbers of the final releases (CATALOG_VERSION_NO in
// catversion.h on each REL_x_STABLE branch). pg_control_version 1300 spans
// four majors, so those are told apart by catalog version: a major's
// development and beta catalog versions are all above the previous major's
// release value and at most its own.
var releaseCatalogVersion = []struct {
	major   int
	catalog uint32
}{
	{12, 201909212},
	{13, 202007201},
	{14, 202107181},
	{15, 202209061},
	{16, 202307071},
	{17, 202406281},
}

// majorVersion derives the PostgreSQL major version from the two version
// numbers in pg_control.
func majorVersion(controlVersion, catalogVersion uint32) (int, bool) {
	switch controlVersion {
	case 1201:
		return 12, true
	case 1700:
		return 17, true
	case 1300:
		for i := 1; i < len(releaseCatalogVersion); i++ {
			r := releaseCatalogVersion[i]
			if r.major > 16 {
				break
			}
			if catalogVersion > releaseCatalogVersion[i-1].catalog && catalogVersion <= r.catalog {
				return r.major, true
			}
		}
	}
	return 0, false
}
