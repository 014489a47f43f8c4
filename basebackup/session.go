package basebackup

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
)

// session is the one connection a base backup holds open from start to
// stop: PostgreSQL ends a non-exclusive backup when its session ends.
type session struct {
	conn    *pgx.Conn
	version int // server_version_num
}

func connect(ctx context.Context, connString string) (*session, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("connection settings (PG* variables): %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	// A statement_timeout set for the role would cut a spread checkpoint
	// in pg_backup_start, or the stop, halfway through the backup.
	if _, err := conn.Exec(ctx, "SET statement_timeout = 0"); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("prepare session: %w", err)
	}
	s := &session{conn: conn}
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&s.version); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("query server version: %w", err)
	}
	// Before anything starts: a newer major's formats are unknown.
	if err := pgcontrol.CheckServerVersion(s.version); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return s, nil
}

func (s *session) close(ctx context.Context) { s.conn.Close(ctx) }

// serverFacts are what backup-push checks before it starts.
type serverFacts struct {
	DataDir        string
	SystemID       uint64
	WALSegmentSize uint64
	InRecovery     bool
	ArchiveMode    string
	// Streamers counts the server's walsenders: with archive_mode off,
	// WAL may reach the archive through walnut wal-receive.
	Streamers   int
	Tablespaces []archive.Tablespace
}

func (s *session) facts(ctx context.Context) (serverFacts, error) {
	var f serverFacts
	var sysid string
	err := s.conn.QueryRow(ctx, `SELECT current_setting('data_directory'),
		(SELECT system_identifier FROM pg_control_system())::text,
		(SELECT setting FROM pg_settings WHERE name = 'wal_segment_size')::bigint,
		pg_is_in_recovery(), current_setting('archive_mode'),
		(SELECT count(*) FROM pg_stat_replication)::int`).Scan(&f.DataDir, &sysid, &f.WALSegmentSize, &f.InRecovery, &f.ArchiveMode, &f.Streamers)
	if err != nil {
		return f, fmt.Errorf("query server settings: %w", err)
	}
	if _, err := fmt.Sscan(sysid, &f.SystemID); err != nil {
		return f, fmt.Errorf("system identifier %q: %w", sysid, err)
	}
	rows, err := s.conn.Query(ctx, `SELECT oid::text, spcname, pg_tablespace_location(oid)
		FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid`)
	if err != nil {
		return f, fmt.Errorf("query tablespaces: %w", err)
	}
	for rows.Next() {
		var t archive.Tablespace
		if err := rows.Scan(&t.OID, &t.Name, &t.Location); err != nil {
			return f, err
		}
		f.Tablespaces = append(f.Tablespaces, t)
	}
	return f, rows.Err()
}

// start begins a non-exclusive backup and returns its start LSN and
// timeline.
func (s *session) start(ctx context.Context, label string, fast bool) (pgcontrol.LSN, uint32, error) {
	q := "SELECT pg_backup_start($1, $2)::text"
	args := []any{label, fast}
	if s.version < 150000 {
		q = "SELECT pg_start_backup($1, $2, false)::text"
	}
	var lsn string
	if err := s.conn.QueryRow(ctx, q, args...).Scan(&lsn); err != nil {
		return 0, 0, fmt.Errorf("start backup: %w", err)
	}
	start, err := pgcontrol.ParseLSN(lsn)
	if err != nil {
		return 0, 0, err
	}
	var tli uint32
	if err := s.conn.QueryRow(ctx, "SELECT timeline_id FROM pg_control_checkpoint()").Scan(&tli); err != nil {
		return 0, 0, fmt.Errorf("query timeline: %w", err)
	}
	return start, tli, nil
}

// stop ends the backup and returns the stop LSN and the contents of
// backup_label and tablespace_map. It does not let PostgreSQL wait for the
// archiver, which waits forever when archiving fails: walnut checks its own
// archive instead, with a timeout (waitArchived).
func (s *session) stop(ctx context.Context) (lsn pgcontrol.LSN, label, spcmap string, err error) {
	q := "SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(false)"
	if s.version < 150000 {
		q = "SELECT lsn::text, labelfile, spcmapfile FROM pg_stop_backup(false, false)"
	}
	var l string
	var spc *string
	if err := s.conn.QueryRow(ctx, q).Scan(&l, &label, &spc); err != nil {
		return 0, "", "", fmt.Errorf("stop backup: %w", err)
	}
	if spc != nil {
		spcmap = *spc
	}
	lsn, err = pgcontrol.ParseLSN(l)
	return lsn, label, spcmap, err
}
