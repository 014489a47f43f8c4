// Package wal archives and restores WAL files: wal-push (and its pool,
// which stores the next ready files ahead of PostgreSQL's calls), wal-fetch
// and its prefetch, and the state both keep under pg_wal/.walnut.
package wal
