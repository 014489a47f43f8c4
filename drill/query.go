package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walnut-pg/walnut/pgserver"
)

// waitReady waits until the server accepts connections and has left
// recovery, and returns a connection to the first database it can reach
// (postgres, else template1, since a cluster may have dropped postgres).
// A server that exits ends the wait at once.
func waitReady(ctx context.Context, srv *pgserver.Server, role string, timeout time.Duration) (*pgx.Conn, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		select {
		case <-srv.Done():
			return nil, "", fmt.Errorf("the server stopped before it became consistent (%v); its log follows", srv.ExitError())
		default:
		}
		for _, db := range []string{"postgres", "template1"} {
			conn, err := pgx.Connect(ctx, srv.ConnString(role, db))
			if err != nil {
				last = err
				var pe *pgconn.PgError
				if errors.As(err, &pe) {
					switch {
					case pe.Code == "3D000": // no such database: try the next
						continue
					case pe.Code == "28000" || pe.Code == "28P01":
						return nil, "", fmt.Errorf("connect as role %s: %w; give the restored cluster's superuser with --db-user", role, err)
					}
				}
				break
			}
			var inRecovery bool
			if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
				conn.Close(context.WithoutCancel(ctx))
				last = err
				break
			}
			if !inRecovery {
				return conn, db, nil
			}
			conn.Close(context.WithoutCancel(ctx))
			last = errors.New("still in recovery")
			break
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, "", fmt.Errorf("the server was not consistent and accepting connections after %s (last: %v); raise --start-timeout if its WAL takes longer to replay", timeout, last)
			}
			return nil, "", ctx.Err()
		case <-srv.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func timeline(ctx context.Context, conn *pgx.Conn) (uint32, error) {
	var tli int64
	if err := conn.QueryRow(ctx, "SELECT timeline_id FROM pg_control_checkpoint()").Scan(&tli); err != nil {
		return 0, fmt.Errorf("query timeline: %w", err)
	}
	return uint32(tli), nil
}

// maxQueryRows bounds what --query's result the report keeps per database.
const maxQueryRows = 100

// queryDatabases reports every database's size and runs the drill's query
// in each one asked for.
func queryDatabases(ctx context.Context, srv *pgserver.Server, conn *pgx.Conn, connDB, role string, o Options) ([]Database, error) {
	rows, err := conn.Query(ctx, `SELECT datname, pg_database_size(oid) FROM pg_database
		WHERE datallowconn AND NOT datistemplate ORDER BY datname`)
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	var dbs []Database
	for rows.Next() {
		var d Database
		if err := rows.Scan(&d.Name, &d.SizeBytes); err != nil {
			return nil, err
		}
		if len(o.Databases) == 0 || slices.Contains(o.Databases, d.Name) {
			dbs = append(dbs, d)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	for _, want := range o.Databases {
		if !slices.ContainsFunc(dbs, func(d Database) bool { return d.Name == want }) {
			return dbs, fmt.Errorf("database %q is not in the restored cluster (or does not allow connections)", want)
		}
	}
	for i := range dbs {
		d := &dbs[i]
		c := conn
		if d.Name != connDB {
			if c, err = pgx.Connect(ctx, srv.ConnString(role, d.Name)); err != nil {
				return dbs, fmt.Errorf("connect to database %s: %w", d.Name, err)
			}
		}
		if o.Query == "" {
			err = countRows(ctx, c, d)
		} else {
			d.Query, err = runQuery(ctx, c, o.Query)
		}
		if c != conn {
			c.Close(context.WithoutCancel(ctx))
		}
		if err != nil {
			return dbs, fmt.Errorf("database %s: %w", d.Name, err)
		}
		o.Log.Info("database checked", "database", d.Name, "bytes", d.SizeBytes, "tables", len(d.Tables), "rows", d.Rows)
	}
	return dbs, nil
}

// userTables lists every ordinary table outside the system schemas,
// partitions included (their parents hold no rows of their own), as
// identifiers the server quoted.
const userTables = `SELECT format('%I.%I', n.nspname, c.relname)
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
	  AND n.nspname !~ '^pg_(toast|temp_)'
	ORDER BY 1`

// countRows counts the rows of every user table: reading every heap page
// is what proves the data came back, and with data checksums on it
// checks every page's.
func countRows(ctx context.Context, conn *pgx.Conn, d *Database) error {
	rows, err := conn.Query(ctx, userTables)
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	for _, t := range tables {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&n); err != nil {
			return fmt.Errorf("count rows of %s: %w", t, err)
		}
		d.Tables = append(d.Tables, TableRows{Table: t, Rows: n})
		d.Rows += n
	}
	return nil
}

// runQuery runs the operator's query and keeps its result as text, as
// psql would print it.
func runQuery(ctx context.Context, conn *pgx.Conn, sql string) (*QueryResult, error) {
	rows, err := conn.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	res := &QueryResult{Rows: [][]string{}}
	for _, f := range rows.FieldDescriptions() {
		res.Columns = append(res.Columns, f.Name)
	}
	for rows.Next() {
		if len(res.Rows) == maxQueryRows {
			res.Truncated = true
			continue
		}
		row := make([]string, 0, len(res.Columns))
		for _, v := range rows.RawValues() {
			if v == nil {
				row = append(row, "")
			} else {
				row = append(row, string(v))
			}
		}
		res.Rows = append(res.Rows, row)
	}
	return res, rows.Err()
}
