package testpg

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ConnString is a libpq keyword/value string for this server's socket.
func (c *Cluster) ConnString() string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=10", c.SocketDir, c.Port)
}

// Connect opens a pgx connection, closed when the test ends.
func (c *Cluster) Connect(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), c.ConnString())
	if err != nil {
		t.Fatalf("connect to %s: %v", c.SocketDir, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs sql, which may hold several statements, and fails the test on
// error.
func (c *Cluster) Exec(t testing.TB, sql string) {
	t.Helper()
	if err := c.ExecErr(t.Context(), sql); err != nil {
		t.Fatal(err)
	}
}

// ExecErr is Exec that returns the error.
func (c *Cluster) ExecErr(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.ConnString())
	if err != nil {
		return fmt.Errorf("connect to %s: %w", c.SocketDir, err)
	}
	defer conn.Close(context.Background())
	// The simple protocol accepts several statements in one string.
	if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("exec %q: %w", sql, err)
	}
	return nil
}

// QueryString returns the first column of the first row as PostgreSQL's text
// output, whatever its type. No row or a NULL fails the test; use coalesce
// where NULL is expected.
func (c *Cluster) QueryString(t testing.TB, sql string) string {
	t.Helper()
	s, err := c.Query(t.Context(), sql)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var errNull = errors.New("first column is NULL")

// Query is QueryString that returns the error.
func (c *Cluster) Query(ctx context.Context, sql string) (string, error) {
	conn, err := pgx.Connect(ctx, c.ConnString())
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", c.SocketDir, err)
	}
	defer conn.Close(context.Background())
	// The simple protocol returns every value in text format, so the raw
	// bytes are what psql would print.
	rows, err := conn.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return "", fmt.Errorf("query %q: %w", sql, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "", fmt.Errorf("query %q: %w", sql, err)
		}
		return "", fmt.Errorf("query %q: no rows", sql)
	}
	raw := rows.RawValues()
	if len(raw) == 0 {
		return "", fmt.Errorf("query %q: no columns", sql)
	}
	if raw[0] == nil {
		return "", fmt.Errorf("query %q: %w", sql, errNull)
	}
	s := string(raw[0])
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("query %q: %w", sql, err)
	}
	return s, nil
}

// WaitReady waits until the server accepts connections and has left
// recovery (archive recovery finished and promoted), failing the test with
// the log tail if the server exits or timeout passes.
func (c *Cluster) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	if err := c.WaitReadyErr(t.Context(), timeout); err != nil {
		t.Fatalf("%v\n%s", err, c.LogTail(logTailLines))
	}
}

// WaitReadyErr is WaitReady that returns the failure.
func (c *Cluster) WaitReadyErr(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if !c.Running() {
			return fmt.Errorf("server in %s: %w", c.DataDir, errNotRunning)
		}
		s, err := c.Query(ctx, "SELECT pg_is_in_recovery()::text")
		switch {
		case err != nil:
			last = err
		case s == "false":
			return nil
		default:
			last = errors.New("still in recovery")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server in %s not ready after %s: %w", c.DataDir, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
