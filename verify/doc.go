// Package verify proves what a restore would need without restoring:
// backup-verify decodes every object of a backup and checks it against
// the backup's manifests and the WAL archive; wal-verify follows the
// archive's WAL along the timelines a restore would take. It never
// writes: the archive is never changed. (The restore drill, which does
// restore, is package drill.)
package verify
