// Package receive is wal-receive: a long-running process that streams WAL
// over a physical replication connection and stores it in the archive as
// wal-push would (through archive.PutWAL), the segment being written
// included, as a .partial that each upload replaces.
package receive
