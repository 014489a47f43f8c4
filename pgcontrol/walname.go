package pgcontrol

import (
	"fmt"
	"strconv"
	"strings"
)

// WAL segment sizes PostgreSQL accepts (initdb --wal-segsize): a power of two
// from 1 MiB to 1 GiB.
const (
	MinWALSegmentSize = 1 << 20
	MaxWALSegmentSize = 1 << 30
	// DefaultWALSegmentSize is what initdb uses unless told otherwise.
	DefaultWALSegmentSize = 16 << 20
)

// ValidSegmentSize reports whether PostgreSQL could have been initialised
// with this WAL segment size.
func ValidSegmentSize(segSize uint64) bool {
	return segSize >= MinWALSegmentSize && segSize <= MaxWALSegmentSize && segSize&(segSize-1) == 0
}

// segmentsPerXLogID is how many segments share one middle part ("xlogid") of
// a WAL file name: the low 32 bits of an LSN are split into segments.
func segmentsPerXLogID(segSize uint64) uint64 {
	return (1 << 32) / segSize
}

func mustValidSegmentSize(segSize uint64) {
	if !ValidSegmentSize(segSize) {
		// A segment size comes from pg_control or configuration that was
		// already validated; a bad one here is a bug in the caller.
		panic(fmt.Sprintf("pgcontrol: invalid WAL segment size %d", segSize))
	}
}

// WALFileName names a WAL segment: timeline, then the segment number split
// into the xlogid and the segment within it, each as 8 upper-case hex digits.
// It panics if segSize is not a valid WAL segment size (see ValidSegmentSize).
func WALFileName(tli uint32, segNo uint64, segSize uint64) string {
	mustValidSegmentSize(segSize)
	per := segmentsPerXLogID(segSize)
	return fmt.Sprintf("%08X%08X%08X", tli, uint32(segNo/per), uint32(segNo%per))
}

// SegmentNumber is the number of the segment that holds lsn.
// It panics if segSize is not a valid WAL segment size.
func SegmentNumber(lsn LSN, segSize uint64) uint64 {
	mustValidSegmentSize(segSize)
	return uint64(lsn) / segSize
}

// SegmentStart is the LSN of the first byte of segment segNo.
// It panics if segSize is not a valid WAL segment size.
func SegmentStart(segNo, segSize uint64) LSN {
	mustValidSegmentSize(segSize)
	return LSN(segNo * segSize)
}

// ParseWALFileName is the inverse of WALFileName. The segment part must be
// below the number of segments per xlogid for segSize: "...000000FF" exists
// with 16 MiB segments but not with 1 GiB ones.
func ParseWALFileName(name string, segSize uint64) (tli uint32, segNo uint64, err error) {
	if !ValidSegmentSize(segSize) {
		return 0, 0, fmt.Errorf("parse WAL file name %q: invalid WAL segment size %d", name, segSize)
	}
	if !IsWALFileName(name) {
		return 0, 0, fmt.Errorf("parse WAL file name %q: want 24 upper-case hex digits", name)
	}
	t, _ := strconv.ParseUint(name[0:8], 16, 32)
	log, _ := strconv.ParseUint(name[8:16], 16, 32)
	seg, _ := strconv.ParseUint(name[16:24], 16, 32)
	if t == 0 {
		return 0, 0, fmt.Errorf("parse WAL file name %q: timeline 0 does not exist", name)
	}
	per := segmentsPerXLogID(segSize)
	if seg >= per {
		return 0, 0, fmt.Errorf("parse WAL file name %q: segment %X out of range for %d-byte segments (max %X)", name, seg, segSize, per-1)
	}
	return uint32(t), log*per + seg, nil
}

// HistoryFileName names the history file that a promotion to timeline tli writes.
func HistoryFileName(tli uint32) string {
	return fmt.Sprintf("%08X.history", tli)
}

// PostgreSQL only ever writes upper-case hex in file names, and its own name
// checks (IsXLogFileName and friends) reject lower case, so we do too.
func isUpperHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// IsWALFileName reports whether name is a WAL segment name such as
// 000000010000000A000000FF.
func IsWALFileName(name string) bool {
	return len(name) == 24 && isUpperHex(name)
}

// IsHistoryFileName reports whether name is a timeline history file name such
// as 00000002.history.
func IsHistoryFileName(name string) bool {
	hex, ok := strings.CutSuffix(name, ".history")
	return ok && len(hex) == 8 && isUpperHex(hex)
}

// IsBackupHistoryFileName reports whether name is a backup history file name
// such as 000000010000000000000002.00000028.backup (segment, then the offset
// of the backup start within it).
func IsBackupHistoryFileName(name string) bool {
	rest, ok := strings.CutSuffix(name, ".backup")
	return ok && len(rest) == 24+1+8 && rest[24] == '.' && isUpperHex(rest[:24]) && isUpperHex(rest[25:])
}

// IsPartialFileName reports whether name is a partial segment name such as
// 000000010000000000000002.partial, which a promotion leaves for the last,
// incomplete segment of the old timeline.
func IsPartialFileName(name string) bool {
	seg, ok := strings.CutSuffix(name, ".partial")
	return ok && IsWALFileName(seg)
}

// IsArchivableName reports whether name is one of the kinds of file
// PostgreSQL hands to archive_command: a segment, a history file, a backup
// history file or a partial segment.
func IsArchivableName(name string) bool {
	return IsWALFileName(name) || IsHistoryFileName(name) || IsBackupHistoryFileName(name) || IsPartialFileName(name)
}
