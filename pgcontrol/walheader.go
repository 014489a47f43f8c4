package pgcontrol

import (
	"encoding/binary"
	"fmt"
)

// XLOG_PAGE_MAGIC per major version (src/include/access/xlog_internal.h on
// each REL_x_STABLE branch). It changes whenever the WAL format does, so it
// also tells which major version wrote a segment.
var walPageMagic = map[uint16]int{
	0xD101: 12,
	0xD106: 13,
	0xD10D: 14,
	0xD110: 15,
	0xD113: 16,
	0xD116: 17,
	0xD118: 18,
}

// latestMagic is the newest supported major's. PostgreSQL has bumped the
// magic upward within 0xD1xx for every WAL format change since 9.x.
const latestMagic = 0xD118

// unknownMagic explains a first page that walnut does not recognise.
func unknownMagic(magic uint16) error {
	if magic > latestMagic && magic>>8 == 0xD1 {
		return fmt.Errorf("read WAL page header: magic %04X is newer than PostgreSQL %d's (%04X): a segment from a newer major; walnut supports %s",
			magic, MaxMajor, latestMagic, Supported)
	}
	return fmt.Errorf("read WAL page header: unknown magic %04X: not a WAL segment from %s", magic, Supported)
}

// Offsets in XLogLongPageHeaderData on a 64-bit machine: the short header
// (magic uint16, info uint16, tli uint32, pageaddr uint64, rem_len uint32,
// 4 bytes of padding) and then sysid uint64, seg_size uint32, xlog_blcksz uint32.
const (
	xlpMagicOff    = 0
	xlpInfoOff     = 2
	xlpSysidOff    = 24
	xlpSegSizeOff  = 32
	longHeaderSize = 40

	xlpLongHeader = 0x0002 // xlp_info flag: this page has the long header
)

// WALSegmentSystemIdentifier reads the long page header that starts every WAL
// segment and returns the system identifier of the cluster that wrote it and
// the segment size. head needs only the first 40 bytes of the segment.
func WALSegmentSystemIdentifier(head []byte) (sysid uint64, segSize uint32, err error) {
	if len(head) < longHeaderSize {
		return 0, 0, fmt.Errorf("read WAL page header: %d bytes, need %d", len(head), longHeaderSize)
	}
	le := binary.LittleEndian
	magic := le.Uint16(head[xlpMagicOff:])
	if _, ok := walPageMagic[magic]; !ok {
		return 0, 0, unknownMagic(magic)
	}
	if info := le.Uint16(head[xlpInfoOff:]); info&xlpLongHeader == 0 {
		return 0, 0, fmt.Errorf("read WAL page header: info %04X has no long-header flag; not the start of a segment", info)
	}
	sysid = le.Uint64(head[xlpSysidOff:])
	segSize = le.Uint32(head[xlpSegSizeOff:])
	if !ValidSegmentSize(uint64(segSize)) {
		return 0, 0, fmt.Errorf("read WAL page header: invalid segment size %d", segSize)
	}
	return sysid, segSize, nil
}

// WALSegmentPGVersion returns the PostgreSQL major version that wrote a WAL
// segment, from the magic number in its first page header.
func WALSegmentPGVersion(head []byte) (int, error) {
	if len(head) < 2 {
		return 0, fmt.Errorf("read WAL page header: %d bytes, need 2", len(head))
	}
	magic := binary.LittleEndian.Uint16(head)
	v, ok := walPageMagic[magic]
	if !ok {
		return 0, unknownMagic(magic)
	}
	return v, nil
}
