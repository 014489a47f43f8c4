package basebackup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walnut-pg/walnut/pgcontrol"
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
	v, err := show(ctx, conn, "server_version_num")
	if err != nil {
		return fail(err)
	}
	version, err := strconv.Atoi(v)
	if err != nil {
		return fail(fmt.Errorf("server_version_num %q: %w", v, err))
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
	seg, err := show(ctx, conn, "wal_segment_size")
	if err != nil {
		return fail(err)
	}
	if facts.WALSegmentSize, err = parseSize(seg); err != nil {
		return fail(fmt.Errorf("wal_segment_size %q: %w", seg, err))
	}
	// Only for the sentinel's record: a role without the right to read
	// it still backs up.
	facts.DataDir, _ = show(ctx, conn, "data_directory")
	return conn, facts, version, nil
}

func show(ctx context.Context, conn *pgconn.PgConn, setting string) (string, error) {
	res, err := conn.Exec(ctx, "SHOW "+setting).ReadAll()
	if err != nil {
		return "", fmt.Errorf("SHOW %s: %w", setting, err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		return "", fmt.Errorf("SHOW %s: unexpected result", setting)
	}
	return string(res[0].Rows[0][0]), nil
}

// parseSize reads a size as SHOW prints it: "16MB", "1GB".
func parseSize(s string) (uint64, error) {
	units := []struct {
		suffix string
		mult   uint64
	}{{"kB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}}
	mult := uint64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, errors.New("not a size")
	}
	return n * mult, nil
}
