// Package basebackup takes a base backup of a running server: one session
// holding PostgreSQL's non-exclusive backup, a walk of the data directory
// and tablespaces with pg_basebackup's exclusions, tar partitions packed
// and stored by parallel workers, and the PostgreSQL-format manifest.
package basebackup
