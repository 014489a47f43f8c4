// Package verify proves what a restore would need without restoring:
// backup-verify decodes every object of a backup and checks it against
// the backup's manifests and the WAL archive; wal-verify follows the
// archive's WAL along the timelines a restore would take; and the restore
// drill (backup-verify --restore) restores a backup into a scratch
// directory and starts a throwaway server on it. Only the drill writes,
// and only under its scratch directory: the archive is never changed.
package verify
