// Package backup orchestrates walnut's operations (WAL archiving and
// fetching, base backups, restore, listing) over a storage.Store. It owns
// the layout of objects under the archive prefix.
package backup

import (
	"fmt"
	"path"
	"strings"

	"github.com/walnut-pg/walnut/compression"
)

// Object layout under the prefix; see ARCHITECTURE.md.
const (
	identityKey   = "walnut.json"
	walDir        = "wal/"
	backupsDir    = "backups/"
	encryptedExt  = ".pgp"
	manifestName  = "files.json"
	controlName   = "pg_control.tar"
	digestLen     = 16 // hex digits of SHA-256 in a WAL key
	sentinelExt   = ".json"
	partitionName = "part_%04d.tar"
)

// walKeyPrefix is what wal-fetch lists to find name without knowing its
// codec or digest. The "-" keeps 000000010000000000000002 from matching
// 000000010000000000000002.00000028.backup.
func walKeyPrefix(name string) string { return walDir + name + "-" }

// walKey names a WAL object; ext is its encoding's (encoding.ext).
func walKey(name, digest, ext string) string {
	return walKeyPrefix(name) + digest + ext
}

// walObject is a parsed WAL key.
type walObject struct {
	Key       string
	Name      string
	Digest    string
	Codec     compression.Codec
	Encrypted bool
}

func parseWALKey(key string) (walObject, error) {
	o := walObject{Key: key}
	rest, ok := strings.CutPrefix(key, walDir)
	if !ok {
		return o, fmt.Errorf("%s: not a WAL key", key)
	}
	rest, o.Encrypted = strings.CutSuffix(rest, encryptedExt)
	o.Codec, rest = compression.ForKey(rest)
	i := strings.LastIndexByte(rest, '-')
	if i < 0 || len(rest)-i-1 != digestLen {
		return o, fmt.Errorf("%s: malformed WAL key (want wal/<name>-<16 hex digits>[.codec][.pgp])", key)
	}
	o.Name, o.Digest = rest[:i], rest[i+1:]
	return o, nil
}

func backupPrefix(name string) string { return backupsDir + name + "/" }
func sentinelKey(name string) string  { return backupsDir + name + sentinelExt }

// backupExt is the extension every object of the backup sn shares (one
// codec, encrypted or not), read from its manifest's key.
func backupExt(sn *Sentinel) string {
	ext, ok := strings.CutPrefix(sn.ManifestKey, backupPrefix(sn.Name)+manifestName)
	if !ok {
		return ""
	}
	return ext
}

func partitionKey(name string, n int, ext string) string {
	return backupPrefix(name) + fmt.Sprintf(partitionName, n) + ext
}

func controlKey(name, ext string) string {
	return backupPrefix(name) + controlName + ext
}

func pgManifestKey(name, ext string) string {
	return backupPrefix(name) + pgManifestName + ext
}

func manifestKey(name, ext string) string {
	return backupPrefix(name) + manifestName + ext
}

// backupNameFromSentinel returns the backup name of a sentinel key, or ""
// if key is not one (keys under backups/<name>/ are parts, not sentinels).
func backupNameFromSentinel(key string) string {
	rest, ok := strings.CutPrefix(key, backupsDir)
	if !ok || strings.Contains(rest, "/") {
		return ""
	}
	name, ok := strings.CutSuffix(rest, sentinelExt)
	if !ok || name == "" {
		return ""
	}
	return name
}

// validBackupName guards names that come from users before they become
// keys: a name must be one path segment.
func validBackupName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || path.Clean(name) != name {
		return fmt.Errorf("invalid backup name %q", name)
	}
	return nil
}
