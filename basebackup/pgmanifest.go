package basebackup

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/walnut-pg/walnut/tarball"
)

type pgManifestFile struct {
	Path         string `json:"Path"`
	Size         int64  `json:"Size"`
	LastModified string `json:"Last-Modified"`
	Algorithm    string `json:"Checksum-Algorithm"`
	Checksum     string `json:"Checksum"`
}

type pgWALRange struct {
	Timeline uint32 `json:"Timeline"`
	StartLSN string `json:"Start-LSN"`
	EndLSN   string `json:"End-LSN"`
}

// writePGManifest writes the manifest of files (regular files only) and
// the WAL range. Its last line carries the SHA-256 of everything before it,
// as pg_verifybackup expects.
func writePGManifest(w io.Writer, files []tarball.File, tli uint32, start, end string) error {
	h := sha256.New()
	b := bufio.NewWriter(io.MultiWriter(w, h))
	b.WriteString("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [")
	first := true
	for _, f := range files {
		if f.Type != tarball.TypeFile {
			continue
		}
		var crc [4]byte
		// PostgreSQL prints its CRC32C in memory order, little-endian here.
		binary.LittleEndian.PutUint32(crc[:], f.CRC32C)
		line, err := json.Marshal(pgManifestFile{
			Path:         f.Path,
			Size:         f.Size,
			LastModified: f.ModTime.UTC().Format(time.DateTime) + " GMT",
			Algorithm:    "CRC32C",
			Checksum:     hex.EncodeToString(crc[:]),
		})
		if err != nil {
			return err
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString("\n")
		b.Write(line)
	}
	wal, err := json.Marshal([]pgWALRange{{Timeline: tli, StartLSN: start, EndLSN: end}})
	if err != nil {
		return err
	}
	fmt.Fprintf(b, " ],\n\"WAL-Ranges\": %s,\n", wal)
	if err := b.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "\"Manifest-Checksum\": \"%s\"}\n", hex.EncodeToString(h.Sum(nil)))
	return err
}
