// Package drill is the restore drill (backup-verify --restore): it
// restores a backup into a scratch directory, starts a throwaway server
// on it that recovers to the backup's consistency point and promotes,
// queries it, and removes everything again. The restore itself is a
// function the caller supplies (commands passes restore.Run): job
// packages do not import each other.
package drill
