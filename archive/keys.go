package archive

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/walnut-pg/walnut/compression"
)

// Object layout under the prefix; see ARCHITECTURE.md. Every key walnut
// reads or writes is built by a function in this file.
const (
	IdentityKey   = "walnut.json"
	WALDir        = "wal/"
	BackupsDir    = "backups/"
	encryptedExt  = ".pgp"
	manifestName  = "files.json"
	controlName   = "pg_control.tar"
	DigestLen     = 16 // hex digits of SHA-256 in a WAL key
	sentinelExt   = ".json"
	tombstoneExt  = ".deleting"
	partitionName = "part_%04d.tar"
	runningName   = "running.json"
	probeDir      = "check/"
)

// Files of a data directory that the archive treats specially.
const (
	// ControlFile is stored last, in pg_control.tar, with backup_label.
	ControlFile = "global/pg_control"
	// PGManifestName is PostgreSQL's backup manifest (PostgreSQL 13+
	// format), restored into the data directory so pg_verifybackup can
	// check a restore with PostgreSQL's own tool before the server starts.
	PGManifestName = "backup_manifest"
)

// WALKeyPrefix is what wal-fetch lists to find name without knowing its
// codec or digest. The "-" keeps 000000010000000000000002 from matching
// 000000010000000000000002.00000028.backup.
func WALKeyPrefix(name string) string { return WALDir + name + "-" }

// WALKey names a WAL object; ext is its encoding's (Encoding.Ext).
func WALKey(name, digest, ext string) string {
	return WALKeyPrefix(name) + digest + ext
}

// WALObject is a parsed WAL key.
type WALObject struct {
	Key       string
	Name      string
	Digest    string
	Codec     compression.Codec
	Encrypted bool
	// WALE: the object is WAL-E's (wal_005/<name>.lzo): no digest in its
	// key, and encrypted or not by its content. Twin is the key of WAL-E's
	// object under the same name when walnut's is returned.
	WALE    bool
	Twin    string
	ModTime time.Time // set by listings, not by ParseWALKey
}

// ParseWALKey splits a key under wal/ into its parts.
func ParseWALKey(key string) (WALObject, error) {
	o := WALObject{Key: key}
	rest, ok := strings.CutPrefix(key, WALDir)
	if !ok {
		return o, fmt.Errorf("%s: not a WAL key", key)
	}
	rest, o.Encrypted = strings.CutSuffix(rest, encryptedExt)
	o.Codec, rest = compression.ForKey(rest)
	i := strings.LastIndexByte(rest, '-')
	if i < 0 || len(rest)-i-1 != DigestLen {
		return o, fmt.Errorf("%s: malformed WAL key (want wal/<name>-<16 hex digits>[.codec][.pgp])", key)
	}
	o.Name, o.Digest = rest[:i], rest[i+1:]
	return o, nil
}

// BackupPrefix is the folder holding a backup's parts.
func BackupPrefix(name string) string { return BackupsDir + name + "/" }

// SentinelKey is the object whose presence makes a backup exist.
func SentinelKey(name string) string { return BackupsDir + name + sentinelExt }

// TombstoneKey marks a backup whose delete has begun: delete writes
// backups/<name>.deleting before it removes the sentinel and removes it
// after the last part, so a later run finishes an interrupted delete at
// once, where parts without a sentinel or tombstone might still belong to a
// running backup-push and have to wait out the grace period.
func TombstoneKey(name string) string { return BackupsDir + name + tombstoneExt }

// BackupExt is the extension every object of the backup sn shares (one
// codec, encrypted or not), read from its manifest's key.
func BackupExt(sn *Sentinel) string {
	ext, ok := strings.CutPrefix(sn.ManifestKey, BackupPrefix(sn.Name)+manifestName)
	if !ok {
		return ""
	}
	return ext
}

// RunningKey names the marker of a backup-push under way. It lies among
// the backup's parts, so delete counts it as one: a backup without a
// sentinel whose newest object is younger than the grace period is kept,
// with the WAL from its start on.
func RunningKey(name string) string { return BackupPrefix(name) + runningName }

// ProbeKey names the object walnut check writes, reads and deletes to
// prove the store works. It lies outside wal/ and backups/, so no listing
// of the archive ever counts one a killed check left behind.
func ProbeKey(id string) string { return probeDir + id + ".probe" }

// PartitionKey names data partition n (from 1) of a backup.
func PartitionKey(name string, n int, ext string) string {
	return BackupPrefix(name) + fmt.Sprintf(partitionName, n) + ext
}

// ControlKey names the object holding backup_label, tablespace_map and
// global/pg_control.
func ControlKey(name, ext string) string {
	return BackupPrefix(name) + controlName + ext
}

// PGManifestKey names a backup's PostgreSQL-format manifest.
func PGManifestKey(name, ext string) string {
	return BackupPrefix(name) + PGManifestName + ext
}

// ManifestKey names a backup's files.json.
func ManifestKey(name, ext string) string {
	return BackupPrefix(name) + manifestName + ext
}

// BackupNameFromSentinel returns the backup name of a sentinel key, or ""
// if key is not one (keys under backups/<name>/ are parts, not sentinels).
func BackupNameFromSentinel(key string) string {
	return backupNameWithExt(key, sentinelExt)
}

// BackupNameFromTombstone returns the backup name of a tombstone key, or "".
func BackupNameFromTombstone(key string) string {
	return backupNameWithExt(key, tombstoneExt)
}

func backupNameWithExt(key, ext string) string {
	rest, ok := strings.CutPrefix(key, BackupsDir)
	if !ok || strings.Contains(rest, "/") {
		return ""
	}
	name, ok := strings.CutSuffix(rest, ext)
	if !ok || ValidBackupName(name) != nil {
		return ""
	}
	return name
}

// ValidBackupName guards names that come from users before they become
// keys: a name must be one path segment.
func ValidBackupName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || path.Clean(name) != name {
		return fmt.Errorf("invalid backup name %q", name)
	}
	return nil
}
