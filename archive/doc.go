// Package archive is the archive format that every job package shares:
// the keys of objects under the prefix (keys.go: nothing else derives a
// key), walnut.json identity, backup sentinels and manifests, and the
// encoding stream (compress, then encrypt, and back), and how a file of
// pg_wal is stored (wal-push and wal-receive). It also holds the
// small pieces several jobs need: atomic file writes, an error group and
// the Progress interface. It knows nothing of commands or servers.
package archive
