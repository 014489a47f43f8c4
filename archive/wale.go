package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// WAL-E's layout (format "005", the only one WAL-E 1.x wrote), directly
// under the same prefix walnut uses:
//
//	wal_005/<WAL file name>.lzo                       every WAL, history and .backup file
//	basebackups_005/base_<segment>_<offset>_backup_stop_sentinel.json
//	basebackups_005/base_<segment>_<offset>/extended_version.txt
//	basebackups_005/base_<segment>_<offset>/tar_partitions/part_<n>.tar.lzo
//
// Every object is `lzop -c` output, piped through `gpg -e -r KEYID` when
// WALE_GPG_KEY_ID was set; the name stays .lzo either way, so encryption
// is told from the object's first bytes (lzop's magic or an OpenPGP
// session key packet). The offset in a backup's name is a byte offset
// written in decimal, zero-padded to eight digits (psql's lpad of
// pg_xlogfile_name_offset's file_offset), unlike walnut's hexadecimal.
const (
	WALEWALDir         = "wal_005/"
	WALEBackupsDir     = "basebackups_005/"
	waleSentinelSuffix = "_backup_stop_sentinel.json"
	walePartitionsDir  = "tar_partitions/"
	waleExt            = ".lzo"
	// WALESegmentSize: WAL-E computed WAL positions for 16 MiB segments
	// only (its segment arithmetic carries at 0xFF), so its archives hold
	// nothing else.
	WALESegmentSize = 16 << 20
	// WALESource marks what came from WAL-E in listings and JSON.
	WALESource = "wal-e"
)

var (
	waleBackupName   = regexp.MustCompile(`^base_[0-9A-F]{24}_[0-9]{8}$`)
	walePartitionKey = regexp.MustCompile(`^part_[0-9]+\.tar\.lzo$`)
)

// WALEWALKey is where WAL-E stored the WAL file name.
func WALEWALKey(name string) string { return WALEWALDir + name + waleExt }

// WALESentinelKey is the object whose presence makes a WAL-E backup exist.
func WALESentinelKey(name string) string { return WALEBackupsDir + name + waleSentinelSuffix }

// WALEBackupPrefix holds a WAL-E backup's partitions and extended_version.txt.
func WALEBackupPrefix(name string) string { return WALEBackupsDir + name + "/" }

// WALEPartitionsPrefix holds a WAL-E backup's tar partitions.
func WALEPartitionsPrefix(name string) string { return WALEBackupPrefix(name) + walePartitionsDir }

// IsWALEKey reports whether key lies in WAL-E's part of the prefix.
func IsWALEKey(key string) bool {
	return strings.HasPrefix(key, WALEWALDir) || strings.HasPrefix(key, WALEBackupsDir)
}

// IsWALEBackupName reports whether name is a WAL-E backup name.
func IsWALEBackupName(name string) bool { return waleBackupName.MatchString(name) }

// WALENameFromSentinel returns the backup name of a WAL-E sentinel key, or "".
func WALENameFromSentinel(key string) string {
	rest, ok := strings.CutPrefix(key, WALEBackupsDir)
	if !ok || strings.Contains(rest, "/") {
		return ""
	}
	name, ok := strings.CutSuffix(rest, waleSentinelSuffix)
	if !ok || !IsWALEBackupName(name) {
		return ""
	}
	return name
}

// ParseWALEWALKey returns the WAL file name of a key under wal_005/, or "".
func ParseWALEWALKey(key string) string {
	rest, ok := strings.CutPrefix(key, WALEWALDir)
	if !ok || strings.Contains(rest, "/") {
		return ""
	}
	name, ok := strings.CutSuffix(rest, waleExt)
	if !ok || name == "" {
		return ""
	}
	return name
}

// IsWALEPartitionKey reports whether key is one of a backup's tar partitions.
func IsWALEPartitionKey(name, key string) bool {
	rest, ok := strings.CutPrefix(key, WALEPartitionsPrefix(name))
	return ok && walePartitionKey.MatchString(rest)
}

// waleSentinel is WAL-E's backup_stop_sentinel.json. The start position
// is in the backup's name, the finish time is the sentinel object's own
// modification time (WAL-E's LATEST is the newest sentinel).
type waleSentinel struct {
	StopSegment  *string         `json:"wal_segment_backup_stop"`
	StopOffset   *string         `json:"wal_segment_offset_backup_stop"`
	ExpandedSize int64           `json:"expanded_size_bytes"`
	Spec         json.RawMessage `json:"spec"`
}

// waleSpec is the sentinel's "spec": the data directory and, per
// tablespace OID, where it lived ("loc") and its link under the data
// directory ("link", pg_tblspc/<oid>). The partitions hold a tablespace's
// files under that link's path.
type waleSpec struct {
	BasePrefix  string   `json:"base_prefix"`
	Tablespaces []string `json:"tablespaces"`
}

type waleTablespace struct {
	Loc  string `json:"loc"`
	Link string `json:"link"`
}

// readWALESentinel reads and checks a WAL-E sentinel and describes the
// backup in walnut's terms.
func readWALESentinel(ctx context.Context, s storage.Store, oi storage.ObjectInfo, name string) (*Sentinel, error) {
	key := WALESentinelKey(name)
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	var ws waleSentinel
	if err := json.Unmarshal(b, &ws); err != nil {
		return nil, fmt.Errorf("%s: not WAL-E's sentinel JSON: %w", key, err)
	}
	if ws.StopSegment == nil || ws.StopOffset == nil {
		return nil, fmt.Errorf("%s: no wal_segment_backup_stop or wal_segment_offset_backup_stop: not a finished WAL-E backup", key)
	}
	sn := &Sentinel{
		Name:           name,
		Source:         WALESource,
		FinishTime:     oi.ModTime.UTC(),
		StartSegment:   name[5:29],
		StartOffset:    name[30:],
		StopSegment:    *ws.StopSegment,
		StopOffset:     *ws.StopOffset,
		ExpandedSize:   ws.ExpandedSize,
		WALSegmentSize: WALESegmentSize,
		Compression:    "lzop",
	}
	tli, start, err := waleLSN(sn.StartSegment, sn.StartOffset)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	stli, stop, err := waleLSN(sn.StopSegment, sn.StopOffset)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if stop < start || stli < tli {
		return nil, fmt.Errorf("%s: backup stops at %s, before it starts at %s", key, stop, start)
	}
	sn.Timeline, sn.StartLSN, sn.FinishLSN = tli, start.String(), stop.String()
	if sn.WALETablespaces, sn.DataDir, err = parseWALESpec(ws.Spec); err != nil {
		return nil, fmt.Errorf("%s: spec: %w", key, err)
	}
	return sn, nil
}

// waleLSN turns a WAL-E segment name and decimal offset into a position.
func waleLSN(seg, offset string) (uint32, pgcontrol.LSN, error) {
	if !pgcontrol.IsWALFileName(seg) {
		return 0, 0, fmt.Errorf("%q is not a WAL segment name", seg)
	}
	off, err := strconv.ParseUint(offset, 10, 32)
	if err != nil || off >= WALESegmentSize {
		return 0, 0, fmt.Errorf("segment offset %q is not a decimal offset within a 16 MiB segment", offset)
	}
	tli, segNo, err := pgcontrol.ParseWALFileName(seg, WALESegmentSize)
	if err != nil {
		return 0, 0, err
	}
	return tli, pgcontrol.SegmentStart(segNo, WALESegmentSize) + pgcontrol.LSN(off), nil
}

func parseWALESpec(raw json.RawMessage) ([]Tablespace, string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, "", nil
	}
	var spec waleSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, "", err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, "", err
	}
	var out []Tablespace
	for _, oid := range spec.Tablespaces {
		if _, err := strconv.ParseUint(oid, 10, 32); err != nil {
			return nil, "", fmt.Errorf("tablespace %q is not an OID", oid)
		}
		var ts waleTablespace
		if err := json.Unmarshal(all[oid], &ts); err != nil || ts.Loc == "" {
			return nil, "", fmt.Errorf("tablespace %s: no location (loc)", oid)
		}
		if want := "pg_tblspc/" + oid; strings.TrimSuffix(ts.Link, "/") != want {
			return nil, "", fmt.Errorf("tablespace %s: link %q, want %q", oid, ts.Link, want)
		}
		out = append(out, Tablespace{OID: oid, Location: strings.TrimSuffix(ts.Loc, "/")})
	}
	return out, spec.BasePrefix, nil
}

// ListWALEBackups reads every WAL-E sentinel under basebackups_005/.
func ListWALEBackups(ctx context.Context, s storage.Store) ([]*Sentinel, error) {
	var found []storage.ObjectInfo
	err := s.List(ctx, WALEBackupsDir, func(oi storage.ObjectInfo) error {
		if WALENameFromSentinel(oi.Key) != "" {
			found = append(found, oi)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", WALEBackupsDir, err)
	}
	out := make([]*Sentinel, 0, len(found))
	for _, oi := range found {
		sn, err := readWALESentinel(ctx, s, oi, WALENameFromSentinel(oi.Key))
		if errors.Is(err, storage.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, sn)
	}
	return out, nil
}

// ReadWALESentinel reads the named WAL-E backup's sentinel, and its
// server version from extended_version.txt (one more object, so only
// here, for a backup about to be restored or checked, not per listing).
func ReadWALESentinel(ctx context.Context, s storage.Store, name string) (*Sentinel, error) {
	oi, err := s.Stat(ctx, WALESentinelKey(name))
	if err != nil {
		return nil, err
	}
	sn, err := readWALESentinel(ctx, s, oi, name)
	if err != nil {
		return nil, err
	}
	if err := readWALEVersion(ctx, s, sn); err != nil {
		return nil, err
	}
	return sn, nil
}

// waleVersion finds the release in `SELECT version()`'s text, which
// WAL-E stored as extended_version.txt.
var waleVersion = regexp.MustCompile(`^PostgreSQL (\d+)(?:\.(\d+))?(?:\.(\d+))?`)

// readWALEVersion sets sn.PGVersion (server_version_num) from
// extended_version.txt; a missing or unreadable one leaves it 0, as the
// listing does: only the restore drill needs it, and says so.
func readWALEVersion(ctx context.Context, s storage.Store, sn *Sentinel) error {
	key := WALEBackupPrefix(sn.Name) + "extended_version.txt"
	rc, err := s.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 4096))
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	m := waleVersion.FindStringSubmatch(strings.TrimSpace(string(b)))
	if m == nil {
		return nil
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	patch, _ := strconv.Atoi(m[3])
	if major >= 10 {
		sn.PGVersion = major*10000 + minor
	} else {
		sn.PGVersion = major*10000 + minor*100 + patch
	}
	return nil
}

// WALEPartitions lists a WAL-E backup's partition keys in partition order.
func WALEPartitions(ctx context.Context, s storage.Store, name string) ([]string, error) {
	var keys []string
	err := s.List(ctx, WALEPartitionsPrefix(name), func(oi storage.ObjectInfo) error {
		if !IsWALEPartitionKey(name, oi.Key) {
			return fmt.Errorf("%s: not a WAL-E tar partition (part_<n>.tar.lzo)", oi.Key)
		}
		keys = append(keys, oi.Key)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", WALEPartitionsPrefix(name), err)
	}
	num := func(k string) int {
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(k[strings.LastIndexByte(k, '/')+1:], "part_"), ".tar.lzo"))
		return n
	}
	sort.Slice(keys, func(i, j int) bool { return num(keys[i]) < num(keys[j]) })
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: WAL-E backup %s has a sentinel but no tar partitions", WALEPartitionsPrefix(name), name)
	}
	return keys, nil
}

// hasWALE reports whether the prefix holds anything of WAL-E's, so an
// archive WAL-E alone wrote counts as one before walnut's first push.
func hasWALE(ctx context.Context, s storage.Store) (bool, error) {
	errFound := errors.New("found")
	for _, dir := range []string{WALEBackupsDir, WALEWALDir} {
		err := s.List(ctx, dir, func(storage.ObjectInfo) error { return errFound })
		if errors.Is(err, errFound) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("list %s: %w", dir, err)
		}
	}
	return false, nil
}

// findWALE finds name under wal_005/.
func findWALE(ctx context.Context, s storage.Store, name string) (WALObject, error) {
	key := WALEWALKey(name)
	if _, err := s.Stat(ctx, key); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return WALObject{}, fmt.Errorf("%s: %w", name, storage.ErrNotFound)
		}
		return WALObject{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return WALObject{Key: key, Name: name, Codec: compression.Lzop(), WALE: true}, nil
}
