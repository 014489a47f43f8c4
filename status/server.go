package status

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walnut-pg/walnut/pgcontrol"
)

// queryServer fills r from one session. It reads statistics views and
// functions only, so a role with pg_monitor is enough; pg_stat_replication
// shows its LSN and lag columns only to such a role (or a superuser).
func queryServer(ctx context.Context, connString, dataDir string, r *ServerReport) error {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return fmt.Errorf("connection settings (PG* variables): %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	r.Connected = true

	var current *string
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, pg_is_in_recovery(),
		current_setting('archive_mode'),
		(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'),
		(SELECT system_identifier::text FROM pg_control_system()),
		(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_insert_lsn() END)::text`).
		Scan(&r.VersionNum, &r.InRecovery, &r.ArchiveMode, &r.WALSegmentSize, &r.SystemIdentifier, &current)
	if err != nil {
		return fmt.Errorf("query server facts: %w", err)
	}
	r.CurrentLSN = current
	if r.VersionNum < 120000 {
		return fmt.Errorf("PostgreSQL %d is not supported: walnut needs 12 or later", r.VersionNum/10000)
	}
	if dataDir != "" {
		// Asked only when PGDATA is given: data_directory needs
		// pg_read_all_settings (part of pg_monitor).
		var dir string
		if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dir); err != nil {
			return fmt.Errorf("query data_directory: %w", err)
		}
		r.DataDirectory = &dir
		if !sameDir(dir, dataDir) {
			return fmt.Errorf("the server reached runs %s, not PGDATA %s: check PGHOST and PGPORT", dir, dataDir)
		}
	}
	if err := queryArchiver(ctx, conn, &r.Archiver); err != nil {
		return err
	}
	r.ArchiveLag = archiveLag(r)
	if err := queryStandbys(ctx, conn, r); err != nil {
		return err
	}
	return querySlots(ctx, conn, r)
}

func sameDir(a, b string) bool {
	if ra, err := filepath.EvalSymlinks(a); err == nil {
		a = ra
	}
	if rb, err := filepath.EvalSymlinks(b); err == nil {
		b = rb
	}
	return filepath.Clean(a) == filepath.Clean(b)
}

// queryArchiver reads pg_stat_archiver. The ages are computed by the
// server, against its own clock, so a skewed clock on the host that runs
// status does not move them.
func queryArchiver(ctx context.Context, conn *pgx.Conn, a *ArchiverReport) error {
	var failingSince *float64
	err := conn.QueryRow(ctx, `SELECT archived_count, last_archived_wal, last_archived_time,
		failed_count, last_failed_wal, last_failed_time, stats_reset,
		extract(epoch FROM now() - last_archived_time)::float8,
		extract(epoch FROM now() - greatest(last_archived_time, stats_reset, pg_postmaster_start_time()))::float8
		FROM pg_stat_archiver`).Scan(&a.ArchivedCount, &a.LastArchivedWAL, &a.LastArchivedTime,
		&a.FailedCount, &a.LastFailedWAL, &a.LastFailedTime, &a.StatsReset,
		&a.SecondsSinceLastArchived, &failingSince)
	if err != nil {
		return fmt.Errorf("query pg_stat_archiver: %w", err)
	}
	for _, t := range []**time.Time{&a.LastArchivedTime, &a.LastFailedTime, &a.StatsReset} {
		*t = inUTC(*t)
	}
	// PostgreSQL retries a failed file after a pause and counts each
	// failure; the archiver is failing now when its latest attempt failed.
	a.Failing = a.LastFailedTime != nil && (a.LastArchivedTime == nil || a.LastFailedTime.After(*a.LastArchivedTime))
	if a.Failing {
		a.FailingSeconds = failingSince
	}
	return nil
}

// archiveLag measures the WAL written but not yet archived from the insert
// position and the last archived segment. It is unknown on a standby, when
// nothing has been archived, and right after a promotion, while the last
// archived file is a history file.
func archiveLag(r *ServerReport) *ArchiveLag {
	last := r.Archiver.LastArchivedWAL
	if r.InRecovery || r.CurrentLSN == nil || last == nil || len(*last) < 24 {
		return nil
	}
	segSize := uint64(r.WALSegmentSize)
	if !pgcontrol.ValidSegmentSize(segSize) {
		return nil
	}
	// A backup history file is named after its segment, which is
	// archived before it.
	_, lastSeg, err := pgcontrol.ParseWALFileName((*last)[:24], segSize)
	if err != nil {
		return nil
	}
	insert, err := pgcontrol.ParseLSN(*r.CurrentLSN)
	if err != nil {
		return nil
	}
	var lag ArchiveLag
	end := pgcontrol.SegmentStart(lastSeg+1, segSize)
	if insert > end {
		lag.Bytes = int64(insert - end)
	}
	if seg := pgcontrol.SegmentNumber(insert, segSize); seg > lastSeg+1 {
		lag.Segments = int64(seg - lastSeg - 1)
	}
	return &lag
}

// baseLSN is the position lags are measured from: what a primary has
// written, what a cascading standby has received.
const baseLSN = `(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END)`

func queryStandbys(ctx context.Context, conn *pgx.Conn, r *ServerReport) error {
	rows, err := conn.Query(ctx, `SELECT pid, coalesce(application_name, ''), coalesce(host(client_addr), ''),
		coalesce(state, ''), coalesce(sync_state, ''),
		sent_lsn::text, write_lsn::text, flush_lsn::text, replay_lsn::text,
		pg_wal_lsn_diff(`+baseLSN+`, write_lsn)::bigint,
		pg_wal_lsn_diff(`+baseLSN+`, flush_lsn)::bigint,
		pg_wal_lsn_diff(`+baseLSN+`, replay_lsn)::bigint,
		extract(epoch FROM write_lag)::float8, extract(epoch FROM flush_lag)::float8, extract(epoch FROM replay_lag)::float8
		FROM pg_stat_replication ORDER BY application_name, pid`)
	if err != nil {
		return fmt.Errorf("query pg_stat_replication: %w", err)
	}
	r.Standbys = []StandbyReport{}
	for rows.Next() {
		var s StandbyReport
		if err := rows.Scan(&s.PID, &s.ApplicationName, &s.ClientAddr, &s.State, &s.SyncState,
			&s.SentLSN, &s.WriteLSN, &s.FlushLSN, &s.ReplayLSN,
			&s.WriteLagBytes, &s.FlushLagBytes, &s.ReplayLagBytes,
			&s.WriteLagSeconds, &s.FlushLagSeconds, &s.ReplayLagSeconds); err != nil {
			return fmt.Errorf("query pg_stat_replication: %w", err)
		}
		r.Standbys = append(r.Standbys, s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query pg_stat_replication: %w", err)
	}
	nameStandbys(r.Standbys)
	return nil
}

// nameStandbys gives each standby a name that is unique in this report,
// for metric labels: its application_name, with the walsender's pid added
// when two share one (every standby without its own is "walreceiver").
func nameStandbys(ss []StandbyReport) {
	seen := map[string]int{}
	for _, s := range ss {
		seen[s.ApplicationName]++
	}
	for i := range ss {
		n := ss[i].ApplicationName
		if n == "" {
			n = "unnamed"
		}
		if seen[ss[i].ApplicationName] > 1 {
			n += "-" + strconv.Itoa(int(ss[i].PID))
		}
		ss[i].Name = n
	}
}

func querySlots(ctx context.Context, conn *pgx.Conn, r *ServerReport) error {
	walStatus := "NULL::text"
	if r.VersionNum >= 130000 {
		walStatus = "wal_status"
	}
	rows, err := conn.Query(ctx, `SELECT slot_name::text, slot_type, active, restart_lsn::text, `+walStatus+`,
		pg_wal_lsn_diff(`+baseLSN+`, restart_lsn)::bigint
		FROM pg_replication_slots ORDER BY slot_name`)
	if err != nil {
		return fmt.Errorf("query pg_replication_slots: %w", err)
	}
	r.ReplicationSlots = []ReplicationSlot{}
	for rows.Next() {
		var s ReplicationSlot
		if err := rows.Scan(&s.Name, &s.Type, &s.Active, &s.RestartLSN, &s.WALStatus, &s.RetainedBytes); err != nil {
			return fmt.Errorf("query pg_replication_slots: %w", err)
		}
		r.ReplicationSlots = append(r.ReplicationSlots, s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query pg_replication_slots: %w", err)
	}
	return nil
}

// inUTC gives a server timestamp (pgx reads them in local time) in UTC
// for output.
func inUTC(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
