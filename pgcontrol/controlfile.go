package pgcontrol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// ControlFileSize is the size PostgreSQL writes global/pg_control with; the
// struct itself is much smaller and the rest is zeros.
const ControlFileSize = 8192

// DBState is the cluster state recorded in pg_control.
type DBState uint32

// The values of PostgreSQL's DBState enum, which is stable across 12 to 18.
const (
	StateStartup DBState = iota
	StateShutdowned
	StateShutdownedInRecovery
	StateShutdowning
	StateInCrashRecovery
	StateInArchiveRecovery
	StateInProduction
)

var stateNames = [...]string{
	StateStartup:              "starting up",
	StateShutdowned:           "shut down",
	StateShutdownedInRecovery: "shut down in recovery",
	StateShutdowning:          "shutting down",
	StateInCrashRecovery:      "in crash recovery",
	StateInArchiveRecovery:    "in archive recovery",
	StateInProduction:         "in production",
}

// String gives the words pg_controldata prints for "Database cluster state".
func (s DBState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unrecognized status code"
}

// ControlData is the part of pg_control that backup and archiving need.
type ControlData struct {
	PGControlVersion uint32 // format of pg_control itself, e.g. 1300
	CatalogVersion   uint32
	PGVersion        int // major version, MinMajor..MaxMajor
	SystemIdentifier uint64
	State            DBState
	Time             time.Time // when pg_control was last written
	CheckpointLSN    LSN       // location of the latest checkpoint record
	Redo             LSN       // where replay must start for that checkpoint
	TimelineID       uint32
	PrevTimelineID   uint32
	CheckpointTime   time.Time
	MinRecoveryPoint LSN
	// MinRecoveryPointTLI is the timeline of MinRecoveryPoint.
	MinRecoveryPointTLI uint32
	BackupStartPoint    LSN
	BackupEndPoint      LSN
	BackupEndRequired   bool
	WALSegmentSize      uint32
	BlockSize           uint32
	WALBlockSize        uint32
	DataChecksumVersion uint32 // 0 when data checksums are off
}

// PostgreSQL's pg_crc32c is CRC-32C with the usual init and final xor,
// which is what hash/crc32 computes with the Castagnoli table.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCRCMismatch is returned (wrapped) when pg_control's stored CRC does not
// match its contents: a torn write, a corrupted copy, or not a pg_control.
var ErrCRCMismatch = errors.New("pg_control CRC mismatch")

// ParseControlFile decodes the bytes of global/pg_control. It refuses a file
// that is too short, whose pg_control_version it does not know (another
// major version, or another byte order), or whose CRC-32C does not match.
func ParseControlFile(b []byte) (*ControlData, error) {
	if len(b) < 12 {
		return nil, fmt.Errorf("parse pg_control: file is %d bytes, too short to hold a version number", len(b))
	}
	le := binary.LittleEndian
	version := le.Uint32(b[8:])
	lay, ok := controlLayouts[version]
	if !ok {
		return nil, fmt.Errorf("parse pg_control: %w", unknownControlVersion(version))
	}
	if len(b) < lay.crc+4 {
		return nil, fmt.Errorf("parse pg_control: file is %d bytes, pg_control_version %d needs at least %d", len(b), version, lay.crc+4)
	}
	stored := le.Uint32(b[lay.crc:])
	computed := crc32.Checksum(b[:lay.crc], castagnoli)
	if stored != computed {
		return nil, fmt.Errorf("parse pg_control: %w: stored %08X, computed %08X", ErrCRCMismatch, stored, computed)
	}
	catalog := le.Uint32(b[lay.catalogVersion:])
	major, ok := majorVersion(version, catalog)
	if !ok {
		if catalog > latest.catalog {
			return nil, fmt.Errorf("parse pg_control: catalog version %d is newer than PostgreSQL %d's (%d): a development build or a newer major; walnut supports %s",
				catalog, latest.major, latest.catalog, Supported)
		}
		return nil, fmt.Errorf("parse pg_control: catalog version %d is not that of a PostgreSQL release with pg_control_version %d (a development build?); walnut supports %s",
			catalog, version, Supported)
	}
	cd := &ControlData{
		PGControlVersion:    version,
		CatalogVersion:      catalog,
		PGVersion:           major,
		SystemIdentifier:    le.Uint64(b[lay.systemIdentifier:]),
		State:               DBState(le.Uint32(b[lay.state:])),
		Time:                time.Unix(int64(le.Uint64(b[lay.time:])), 0),
		CheckpointLSN:       LSN(le.Uint64(b[lay.checkPoint:])),
		Redo:                LSN(le.Uint64(b[lay.redo:])),
		TimelineID:          le.Uint32(b[lay.thisTimeLineID:]),
		PrevTimelineID:      le.Uint32(b[lay.prevTimeLineID:]),
		CheckpointTime:      time.Unix(int64(le.Uint64(b[lay.checkPointTime:])), 0),
		MinRecoveryPoint:    LSN(le.Uint64(b[lay.minRecoveryPoint:])),
		MinRecoveryPointTLI: le.Uint32(b[lay.minRecoveryPointTLI:]),
		BackupStartPoint:    LSN(le.Uint64(b[lay.backupStartPoint:])),
		BackupEndPoint:      LSN(le.Uint64(b[lay.backupEndPoint:])),
		BackupEndRequired:   b[lay.backupEndRequired] != 0,
		WALSegmentSize:      le.Uint32(b[lay.walSegmentSize:]),
		BlockSize:           le.Uint32(b[lay.blockSize:]),
		WALBlockSize:        le.Uint32(b[lay.walBlockSize:]),
		DataChecksumVersion: le.Uint32(b[lay.dataChecksumVersion:]),
	}
	// A valid CRC over nonsense is possible for a hand-made file; every WAL
	// name computed later depends on the segment size, so check it here.
	if !ValidSegmentSize(uint64(cd.WALSegmentSize)) {
		return nil, fmt.Errorf("parse pg_control: invalid WAL segment size %d", cd.WALSegmentSize)
	}
	return cd, nil
}

// unknownControlVersion explains a pg_control_version walnut has no layout
// for. PostgreSQL's versions are small numbers (1800 for 18); another byte
// order turns them into huge ones.
func unknownControlVersion(v uint32) error {
	switch {
	case v > latest.controlVersion && v < 10000:
		return fmt.Errorf("pg_control_version %d is newer than PostgreSQL %d's (%d): the cluster is of a newer major; walnut supports %s",
			v, latest.major, latest.controlVersion, Supported)
	case v > 0 && v < releases[1].controlVersion:
		return fmt.Errorf("pg_control_version %d is older than PostgreSQL %d's (%d); walnut supports %s",
			v, MinMajor, releases[1].controlVersion, Supported)
	}
	return fmt.Errorf("unknown pg_control_version %d: not a pg_control of %s on a little-endian machine", v, Supported)
}
