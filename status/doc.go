// Package status measures, on demand, whether archiving is healthy and how
// old the newest backup is: walnut status. It reads the archive (one
// streamed listing, the sentinels and walnut.json) and, when given a
// connection, the server (pg_stat_archiver, the WAL position,
// pg_stat_replication, replication slots). It judges the figures against
// warning and critical limits as a Nagios plugin does, and writes what it
// found where monitoring already looks: a node_exporter textfile and
// pghoard/pglookout-style alert files. walnut keeps no state between runs,
// so every figure is measured afresh; status never writes to the archive.
package status
