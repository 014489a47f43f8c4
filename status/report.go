package status

import (
	"fmt"
	"time"
)

// State is a Nagios plugin state; its number is the exit code.
type State int

const (
	OK       State = 0
	Warning  State = 1
	Critical State = 2
	Unknown  State = 3
)

var stateNames = [...]string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("State(%d)", int(s))
	}
	return stateNames[s]
}

func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown state %q", b)
}

// rank orders states for combining checks, as Nagios plugins combine
// theirs: a known problem outranks a part that could not be measured, so
// CRITICAL > WARNING > UNKNOWN > OK.
func (s State) rank() int {
	switch s {
	case OK:
		return 0
	case Unknown:
		return 1
	case Warning:
		return 2
	}
	return 3
}

// Worst returns the state that outranks the other.
func Worst(a, b State) State {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Report is everything one run measured and concluded. Its JSON form is
// what --json prints; the field names are documented in the README and
// must stay stable. A figure that could not be measured is null.
type Report struct {
	State     State     `json:"state"`
	Summary   string    `json:"summary"`
	CheckedAt time.Time `json:"checked_at"`
	// DurationSeconds is how long the measurement took.
	DurationSeconds float64       `json:"duration_seconds"`
	Archive         ArchiveReport `json:"archive"`
	Server          *ServerReport `json:"server"` // null when no server was asked (--no-server)
	Checks          []Check       `json:"checks"`
	Alerts          []string      `json:"alerts"` // the alert files that are active
}

// ArchiveReport is what the archive holds. Sizes are bytes as stored
// (compressed, encrypted).
type ArchiveReport struct {
	Prefix           string  `json:"prefix"`
	Reachable        bool    `json:"reachable"`
	Error            *string `json:"error"`
	SystemIdentifier *string `json:"system_identifier"`
	// From one listing of every object under the prefix.
	Objects      int64         `json:"objects"`
	TotalBytes   int64         `json:"total_bytes"`
	WALBytes     int64         `json:"wal_bytes"`
	BackupsBytes int64         `json:"backups_bytes"` // everything under backups/, unfinished backups too
	OtherBytes   int64         `json:"other_bytes"`
	Backups      BackupsReport `json:"backups"`
	WAL          WALReport     `json:"wal"`
}

// BackupsReport sums the committed backups, from their sentinels.
type BackupsReport struct {
	Count         int           `json:"count"`
	Permanent     int           `json:"permanent"`
	StoredBytes   int64         `json:"stored_bytes"`
	ExpandedBytes int64         `json:"expanded_bytes"`
	Newest        *BackupReport `json:"newest"`
}

// BackupReport is one backup, as its sentinel describes it.
type BackupReport struct {
	Name          string    `json:"name"`
	FinishTime    time.Time `json:"finish_time"`
	AgeSeconds    float64   `json:"age_seconds"`
	StoredBytes   int64     `json:"stored_bytes"`
	ExpandedBytes int64     `json:"expanded_bytes"`
	Permanent     bool      `json:"permanent"`
}

// WALReport is what is under wal/.
type WALReport struct {
	Objects  int64 `json:"objects"`
	Segments int64 `json:"segments"` // whole segments, not history, backup or partial files
	// NewestSegment is the highest segment name (timeline, then position),
	// and NewestSegmentStoredAt the time the store gives its object.
	NewestSegment           *string    `json:"newest_segment"`
	NewestSegmentStoredAt   *time.Time `json:"newest_segment_stored_at"`
	NewestSegmentAgeSeconds *float64   `json:"newest_segment_age_seconds"`
}

// ServerReport is what the server says.
type ServerReport struct {
	Connected        bool    `json:"connected"`
	Error            *string `json:"error"`
	VersionNum       int     `json:"version_num"`
	InRecovery       bool    `json:"in_recovery"`
	SystemIdentifier string  `json:"system_identifier"`
	DataDirectory    *string `json:"data_directory"`
	ArchiveMode      string  `json:"archive_mode"`
	WALSegmentSize   int64   `json:"wal_segment_size"`
	// CurrentLSN is the WAL insert position on a primary, the last
	// received position on a standby.
	CurrentLSN       *string           `json:"current_lsn"`
	Archiver         ArchiverReport    `json:"archiver"`
	ArchiveLag       *ArchiveLag       `json:"archive_lag"`
	Standbys         []StandbyReport   `json:"standbys"`
	ReplicationSlots []ReplicationSlot `json:"replication_slots"`
}

// ArchiverReport is pg_stat_archiver, with the ages the server computes
// against its own clock.
type ArchiverReport struct {
	ArchivedCount            int64      `json:"archived_count"`
	LastArchivedWAL          *string    `json:"last_archived_wal"`
	LastArchivedTime         *time.Time `json:"last_archived_time"`
	FailedCount              int64      `json:"failed_count"`
	LastFailedWAL            *string    `json:"last_failed_wal"`
	LastFailedTime           *time.Time `json:"last_failed_time"`
	StatsReset               *time.Time `json:"stats_reset"`
	SecondsSinceLastArchived *float64   `json:"seconds_since_last_archived"`
	// Failing: the archiver's latest attempt failed (last_failed_time is
	// after last_archived_time).
	Failing bool `json:"failing"`
	// FailingSeconds is how long archiving has been failing: the time
	// since the last success, or since the server started or its
	// statistics were reset if that is later. Null when not failing.
	FailingSeconds *float64 `json:"failing_seconds"`
	// LastArchivedInArchive says whether last_archived_wal is in this
	// archive; false means archive_command stores somewhere else. Null
	// when not looked up (nothing archived, a standby, no archive).
	LastArchivedInArchive *bool `json:"last_archived_in_archive"`
}

// ArchiveLag is the WAL written but not archived yet: complete segments
// after the last archived one, and the bytes from the end of the last
// archived segment to the insert position (the segment being written
// included).
type ArchiveLag struct {
	Segments int64 `json:"segments"`
	Bytes    int64 `json:"bytes"`
}

// StandbyReport is one row of pg_stat_replication. Lags in bytes are
// measured from the server's current WAL position; lags in seconds are
// PostgreSQL's own write_lag, flush_lag and replay_lag.
type StandbyReport struct {
	Name             string   `json:"name"` // application_name, made unique
	ApplicationName  string   `json:"application_name"`
	ClientAddr       string   `json:"client_addr"`
	PID              int32    `json:"pid"`
	State            string   `json:"state"`
	SyncState        string   `json:"sync_state"`
	SentLSN          *string  `json:"sent_lsn"`
	WriteLSN         *string  `json:"write_lsn"`
	FlushLSN         *string  `json:"flush_lsn"`
	ReplayLSN        *string  `json:"replay_lsn"`
	WriteLagBytes    *int64   `json:"write_lag_bytes"`
	FlushLagBytes    *int64   `json:"flush_lag_bytes"`
	ReplayLagBytes   *int64   `json:"replay_lag_bytes"`
	WriteLagSeconds  *float64 `json:"write_lag_seconds"`
	FlushLagSeconds  *float64 `json:"flush_lag_seconds"`
	ReplayLagSeconds *float64 `json:"replay_lag_seconds"`
}

// ReplicationSlot is one row of pg_replication_slots.
type ReplicationSlot struct {
	Name       string  `json:"name"`
	Type       string  `json:"type"`
	Active     bool    `json:"active"`
	RestartLSN *string `json:"restart_lsn"`
	WALStatus  *string `json:"wal_status"` // PostgreSQL 13 and later
	// RetainedBytes is the WAL the slot keeps: from its restart_lsn to
	// the server's current position.
	RetainedBytes *int64 `json:"retained_bytes"`
}

// Check is one judgement. Value, Warning and Critical are in Unit; a limit
// that is off is null.
type Check struct {
	Name     string   `json:"name"`
	State    State    `json:"state"`
	Message  string   `json:"message"`
	Value    *float64 `json:"value"`
	Unit     string   `json:"unit"`
	Warning  *float64 `json:"warning"`
	Critical *float64 `json:"critical"`
	// Alert is the alert file this check keeps while it is not OK, "" when
	// none is active; Unit is "" for checks without a figure.
	Alert string `json:"alert"`

	// owns are the alert files this check decides; measured is false when
	// it could not be judged, and its files are then left as they are.
	owns     []string
	measured bool
	derived  bool
}
