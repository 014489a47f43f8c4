// Package pgshow reads a server's settings with SHOW, which works on a
// physical replication connection as on any other: the one thing walnut's
// replication clients (wal-receive and backup-push --remote) ask besides
// IDENTIFY_SYSTEM.
package pgshow

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Get returns the setting as SHOW prints it.
func Get(ctx context.Context, conn *pgconn.PgConn, name string) (string, error) {
	res, err := conn.Exec(ctx, "SHOW "+name).ReadAll()
	if err != nil {
		return "", fmt.Errorf("SHOW %s: %w", name, err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		return "", fmt.Errorf("SHOW %s: unexpected answer", name)
	}
	return string(res[0].Rows[0][0]), nil
}

// ServerVersion returns server_version_num (150004 for 15.4).
func ServerVersion(ctx context.Context, conn *pgconn.PgConn) (int, error) {
	v, err := Get(ctx, conn, "server_version_num")
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("server_version_num %q: %w", v, err)
	}
	return n, nil
}

// WALSegmentSize returns wal_segment_size in bytes; whether the size is
// one PostgreSQL allows is the caller's to check.
func WALSegmentSize(ctx context.Context, conn *pgconn.PgConn) (uint64, error) {
	v, err := Get(ctx, conn, "wal_segment_size")
	if err != nil {
		return 0, err
	}
	n, err := ParseSize(v)
	if err != nil {
		return 0, fmt.Errorf("wal_segment_size %q: %w", v, err)
	}
	return n, nil
}

// ParseSize reads a size as SHOW prints it: "16MB", "1GB", "8192".
func ParseSize(s string) (uint64, error) {
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
