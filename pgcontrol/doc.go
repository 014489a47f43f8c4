// Package pgcontrol holds what walnut must know about PostgreSQL's on-disk
// formats: the pg_control file, WAL file names and LSN arithmetic, timeline
// history files and the long page header at the start of a WAL segment.
//
// Everything here is a pure function over bytes or strings, so callers decide
// where the bytes come from (a data directory, a tar stream, the archive).
// Only PostgreSQL 12 to 18 (MinMajor to MaxMajor) on 64-bit little-endian machines are understood;
// anything else is reported as an error rather than guessed at.
package pgcontrol
