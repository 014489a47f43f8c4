package basebackup

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/pgshow"
)

// connectReplication opens a physical replication connection and reads
// what the sentinel and the identity check need.
func connectReplication(ctx context.Context, connString string) (*pgconn.PgConn, serverFacts, int, error) {
	var facts serverFacts
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return nil, facts, 0, fmt.Errorf("connection settings (PG* variables): %w", err)
	}
	cfg.RuntimeParams["replication"] = "true"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "walnut backup-push"
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, facts, 0, fmt.Errorf("connect to PostgreSQL for replication: %w", err)
	}
	fail := func(err error) (*pgconn.PgConn, serverFacts, int, error) {
		conn.Close(context.WithoutCancel(ctx))
		return nil, facts, 0, err
	}
	version, err := pgshow.ServerVersion(ctx, conn)
	if err != nil {
		return fail(err)
	}
	if err := pgcontrol.CheckServerVersion(version); err != nil {
		return fail(err)
	}
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		return fail(fmt.Errorf("IDENTIFY_SYSTEM: %w", err))
	}
	if facts.SystemID, err = strconv.ParseUint(sys.SystemID, 10, 64); err != nil {
		return fail(fmt.Errorf("system identifier %q: %w", sys.SystemID, err))
	}
	if facts.WALSegmentSize, err = pgshow.WALSegmentSize(ctx, conn); err != nil {
		return fail(err)
	}
	if !pgcontrol.ValidSegmentSize(facts.WALSegmentSize) {
		return fail(fmt.Errorf("wal_segment_size %d: not a WAL segment size PostgreSQL allows", facts.WALSegmentSize))
	}
	// Only for the sentinel's record: a role without the right to read
	// it still backs up.
	facts.DataDir, _ = pgshow.Get(ctx, conn, "data_directory")
	return conn, facts, version, nil
}
