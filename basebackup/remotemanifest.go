package basebackup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// arrived is what the replication stream delivered of one regular file.
type arrived struct {
	Size   int64
	CRC32C uint32
}

// checkServerManifest checks the server's backup_manifest against the
// files that arrived: its own checksum, then every file listed arrived
// with its size and CRC32C, and nothing arrived that it does not list. A
// difference means the stream or walnut lost or changed something.
func checkServerManifest(manifest []byte, got map[string]arrived) error {
	if err := checkManifestChecksum(manifest); err != nil {
		return err
	}
	var m struct {
		Version int `json:"PostgreSQL-Backup-Manifest-Version"`
		Files   []struct {
			Path        string `json:"Path"`
			EncodedPath string `json:"Encoded-Path"`
			Size        int64  `json:"Size"`
			Algorithm   string `json:"Checksum-Algorithm"`
			Checksum    string `json:"Checksum"`
		} `json:"Files"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return fmt.Errorf("server's backup_manifest: %w", err)
	}
	listed := map[string]bool{}
	var bad []string
	for _, f := range m.Files {
		path := f.Path
		if f.EncodedPath != "" {
			b, err := hex.DecodeString(f.EncodedPath)
			if err != nil {
				return fmt.Errorf("server's backup_manifest: Encoded-Path %q: %w", f.EncodedPath, err)
			}
			path = string(b)
		}
		listed[path] = true
		a, ok := got[path]
		switch {
		case !ok:
			bad = append(bad, path+": listed, not received")
		case a.Size != f.Size:
			bad = append(bad, fmt.Sprintf("%s: received %d bytes, listed %d", path, a.Size, f.Size))
		case strings.EqualFold(f.Algorithm, "CRC32C"):
			var crc [4]byte
			// PostgreSQL prints its CRC32C in memory order, little-endian here.
			binary.LittleEndian.PutUint32(crc[:], a.CRC32C)
			if hex.EncodeToString(crc[:]) != strings.ToLower(f.Checksum) {
				bad = append(bad, fmt.Sprintf("%s: CRC32C %x, listed %s", path, crc, f.Checksum))
			}
		}
	}
	for path := range got {
		if !listed[path] {
			bad = append(bad, path+": received, not listed")
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("the files received differ from the server's backup_manifest (%d): %s", len(bad), strings.Join(bad[:min(len(bad), 5)], "; "))
	}
	return nil
}

// checkManifestChecksum checks the SHA-256 the manifest's last line
// carries of everything before that line.
func checkManifestChecksum(manifest []byte) error {
	const key = "\"Manifest-Checksum\": \""
	i := bytes.LastIndex(manifest, []byte(key))
	if i < 0 {
		return errors.New("server's backup_manifest has no Manifest-Checksum")
	}
	want, _, ok := strings.Cut(string(manifest[i+len(key):]), "\"")
	sum := sha256.Sum256(manifest[:i])
	if !ok || !strings.EqualFold(want, hex.EncodeToString(sum[:])) {
		return errors.New("server's backup_manifest: Manifest-Checksum does not match its contents")
	}
	return nil
}
