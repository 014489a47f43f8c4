package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"time"

	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/tarball"
)

// Sentinel is backups/<name>.json, written after every other part of a
// backup: a backup exists only once its sentinel does. It holds no table
// data, so listing and retention never need a decryption key.
type Sentinel struct {
	Format           int       `json:"format"`
	Name             string    `json:"name"`
	Permanent        bool      `json:"permanent"`
	StartTime        time.Time `json:"start_time"`
	FinishTime       time.Time `json:"finish_time"`
	StartLSN         string    `json:"start_lsn"`
	FinishLSN        string    `json:"finish_lsn"`
	Timeline         uint32    `json:"timeline"`
	StartSegment     string    `json:"wal_segment_backup_start"`
	StartOffset      string    `json:"wal_segment_offset_backup_start"`
	StopSegment      string    `json:"wal_segment_backup_stop"`
	StopOffset       string    `json:"wal_segment_offset_backup_stop"`
	SystemIdentifier string    `json:"system_identifier"`
	PGVersion        int       `json:"pg_version"` // server_version_num
	WALSegmentSize   uint64    `json:"wal_segment_size"`
	Compression      string    `json:"compression"`
	Encrypted        bool      `json:"encrypted"`
	Partitions       int       `json:"partitions"`
	Files            int       `json:"files"` // manifest entries: files, directories and links
	ExpandedSize     int64     `json:"expanded_size_bytes"`
	StoredSize       int64     `json:"stored_size_bytes"`
	Hostname         string    `json:"hostname,omitempty"`
	DataDir          string    `json:"data_dir"`
	ManifestKey      string    `json:"manifest_key"`
	ControlKey       string    `json:"control_key"`
	PGManifestKey    string    `json:"pg_manifest_key,omitempty"`
	// Source is "wal-e" for a backup WAL-E made (basebackups_005/), read
	// from its own sentinel; "" for walnut's.
	Source string `json:"source,omitempty"`
	// WALETablespaces are the tablespaces a WAL-E backup's spec records.
	WALETablespaces []Tablespace `json:"wal_e_tablespaces,omitempty"`
	// DeltaBase, for a delta backup, names the backup it stores changes
	// against; restoring it needs that backup's whole chain. DeltaDepth
	// is its place in the chain (the full backup is 0), DeltaBaseLSN the
	// base's start LSN: pages older than it were not stored.
	DeltaBase    string `json:"delta_base,omitempty"`
	DeltaDepth   int    `json:"delta_depth,omitempty"`
	DeltaBaseLSN string `json:"delta_base_start_lsn,omitempty"`
	// DatabaseDirs are the database directories the backup holds
	// (base/<oid>, pg_tblspc/<oid>/PG_*/<oid>): a delta over it stores the
	// files of any other whole, since CREATE DATABASE and ALTER DATABASE
	// SET TABLESPACE copy files with their old page LSNs.
	DatabaseDirs []string `json:"database_dirs,omitempty"`
}

// IsDelta reports whether the backup is a delta, restorable only over its
// base's chain.
func (sn *Sentinel) IsDelta() bool { return sn.DeltaBase != "" }

// IsWALE reports whether the backup is one WAL-E made.
func (sn *Sentinel) IsWALE() bool { return sn.Source == WALESource }

// Running is the marker backup-push leaves while it runs (RunningKey):
// what an operator needs to find the process, and where its WAL starts.
type Running struct {
	Name         string    `json:"name"`
	StartLSN     string    `json:"start_lsn"`
	StartSegment string    `json:"wal_segment_backup_start"`
	Host         string    `json:"host"`
	PID          int       `json:"pid"`
	StartTime    time.Time `json:"start_time"`
	DeltaBase    string    `json:"delta_base,omitempty"` // delete keeps it while the push runs
}

// Tablespace is one user tablespace of a backed-up cluster.
type Tablespace struct {
	OID      string `json:"oid"`
	Name     string `json:"name"`
	Location string `json:"location"`
}

// Manifest is files.json: every file and directory of a backup, with the
// partition that holds it and its CRC32C, so a restore checks each file.
type Manifest struct {
	Format      int            `json:"format"`
	Name        string         `json:"name"`
	Tablespaces []Tablespace   `json:"tablespaces,omitempty"`
	Files       []tarball.File `json:"files"`
	// Paged, in a delta backup, are the files stored as their changed
	// pages only; together with Files they are every file of the backup.
	Paged []PagedFile `json:"paged,omitempty"`
}

// PagedFile is a relation file a delta backup stores as the pages changed
// since its base started: one tar entry, Entry, of PageRecord records.
type PagedFile struct {
	Path      string      `json:"path"`
	Size      int64       `json:"size"` // the whole file's, as the restore must leave it
	Mode      fs.FileMode `json:"mode"`
	ModTime   time.Time   `json:"mtime"`
	Pages     int         `json:"pages"`
	CRC32C    uint32      `json:"crc32c"` // of the entry's bytes
	Partition int         `json:"partition"`
}

// PagedSuffix names the tar entry of a paged file: path + PagedSuffix.
const PagedSuffix = ".walnut-pages"

// PageRecord is the size of one record of a paged entry: the block
// number (4 bytes, little-endian), then the 8 KiB page.
const PageRecord = 4 + 8192

// EntrySize is the size of the paged file's tar entry.
func (p PagedFile) EntrySize() int64 { return int64(p.Pages) * PageRecord }

// ControlPartition marks manifest entries stored in pg_control.tar.
const ControlPartition = 0

// ManifestFormatChunked is the files.json format of a backup that stores
// some files in chunks (tarball.Chunk); backups without any keep format
// 1, so walnut releases from before chunks still restore them.
const ManifestFormatChunked = 2

// ManifestFormatDelta is the files.json format of a delta backup: older
// walnut releases refuse it rather than restore a delta as if whole.
const ManifestFormatDelta = 3

// ManifestFormat is the format a manifest of files is written in.
func ManifestFormat(files []tarball.File) int {
	for _, f := range files {
		if len(f.Chunks) > 0 {
			return ManifestFormatChunked
		}
	}
	return FormatVersion
}

func PutJSON(ctx context.Context, s storage.Store, key string, v any) (int64, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return 0, err
	}
	b = append(b, '\n')
	if err := s.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
		return 0, fmt.Errorf("store %s: %w", key, err)
	}
	return int64(len(b)), nil
}

func PutManifest(ctx context.Context, s storage.Store, key string, e Encoding, m *Manifest) (int64, error) {
	return PutStream(ctx, s, key, e, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(m)
	})
}

func ReadManifest(ctx context.Context, s storage.Store, key string, kr *crypto.Keyring) (*Manifest, error) {
	rc, err := OpenDecoded(ctx, s, key, kr)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", key, err)
	}
	defer rc.Close()
	var m Manifest
	err = json.NewDecoder(rc).Decode(&m)
	if err == nil {
		err = ReadToEnd(rc)
	}
	if err == nil && m.Format > ManifestFormatDelta {
		err = fmt.Errorf("manifest format %d is newer than this walnut understands (%d); upgrade walnut", m.Format, ManifestFormatDelta)
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", key, err)
	}
	return &m, nil
}

func ReadSentinel(ctx context.Context, s storage.Store, name string) (*Sentinel, error) {
	key := SentinelKey(name)
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var sn Sentinel
	if err := json.NewDecoder(io.LimitReader(rc, 16<<20)).Decode(&sn); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if sn.Name != name {
		return nil, fmt.Errorf("%s: names backup %q", key, sn.Name)
	}
	return &sn, nil
}

// ErrNoBackups is returned for LATEST in an archive without backups.
var ErrNoBackups = errors.New("no backups in the archive")

// ListBackups returns every committed backup, oldest first by finish
// time (never by name: names from other timelines or skewed clocks must
// not decide).
func ListBackups(ctx context.Context, s storage.Store) ([]*Sentinel, error) {
	var names []string
	err := s.List(ctx, BackupsDir, func(oi storage.ObjectInfo) error {
		if n := BackupNameFromSentinel(oi.Key); n != "" {
			names = append(names, n)
		}
		return nil
	})
	if err != nil {
		// Stores name the operation and the prefix in their errors.
		return nil, err
	}
	out, err := ReadSentinels(ctx, s, names)
	if err != nil {
		return nil, err
	}
	wale, err := ListWALEBackups(ctx, s)
	if err != nil {
		return nil, err
	}
	if len(wale) == 0 {
		return out, nil
	}
	// One name for two backups would make a name ambiguous: refuse.
	seen := make(map[string]bool, len(out))
	for _, sn := range out {
		seen[sn.Name] = true
	}
	for _, sn := range wale {
		if seen[sn.Name] {
			return nil, fmt.Errorf("backup %s is both walnut's (%s) and WAL-E's (%s); remove the wrong one", sn.Name, SentinelKey(sn.Name), WALESentinelKey(sn.Name))
		}
	}
	out = append(out, wale...)
	SortByFinish(out)
	return out, nil
}

// ReadSentinels reads the named backups' sentinels, oldest first by
// finish time; one deleted since it was listed is left out.
func ReadSentinels(ctx context.Context, s storage.Store, names []string) ([]*Sentinel, error) {
	out := make([]*Sentinel, 0, len(names))
	for _, n := range names {
		sn, err := ReadSentinel(ctx, s, n)
		if errors.Is(err, storage.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, sn)
	}
	SortByFinish(out)
	return out, nil
}

func SortByFinish(out []*Sentinel) {
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].FinishTime.Equal(out[j].FinishTime) {
			return out[i].FinishTime.Before(out[j].FinishTime)
		}
		return out[i].Name < out[j].Name
	})
}

// ResolveBackup finds a backup by name, or the newest for "LATEST".
func ResolveBackup(ctx context.Context, s storage.Store, name string) (*Sentinel, error) {
	if name == "LATEST" {
		all, err := ListBackups(ctx, s)
		if err != nil {
			return nil, err
		}
		if len(all) == 0 {
			return nil, ErrNoBackups
		}
		if latest := all[len(all)-1]; latest.IsWALE() {
			return latest, readWALEVersion(ctx, s, latest)
		}
		return all[len(all)-1], nil
	}
	if err := ValidBackupName(name); err != nil {
		return nil, err
	}
	sn, err := ReadSentinel(ctx, s, name)
	if IsWALEBackupName(name) && (err == nil || errors.Is(err, storage.ErrNotFound)) {
		wsn, werr := ReadWALESentinel(ctx, s, name)
		switch {
		case werr == nil && sn != nil:
			return nil, fmt.Errorf("backup %s is both walnut's (%s) and WAL-E's (%s); remove the wrong one", name, SentinelKey(name), WALESentinelKey(name))
		case werr == nil:
			return wsn, nil
		case !errors.Is(werr, storage.ErrNotFound):
			return nil, werr
		}
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("backup %q not found (no %s); see walnut backup-list: %w", name, SentinelKey(name), storage.ErrNotFound)
	}
	return sn, err
}
