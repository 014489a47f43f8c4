package retention

import (
	"encoding/csv"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"encoding/json"
	"github.com/walnut-pg/walnut/archive"
	"slices"
)

// WALEListColumns are WAL-E's backup-list columns, kept so scripts written for it still parse.
var WALEListColumns = []string{"name", "last_modified", "expanded_size_bytes", "wal_segment_backup_start",
	"wal_segment_offset_backup_start", "wal_segment_backup_stop", "wal_segment_offset_backup_stop"}

func listRow(sn *archive.Sentinel, detail bool) []string {
	row := []string{sn.Name, sn.FinishTime.Format(time.RFC3339), strconv.FormatInt(sn.ExpandedSize, 10),
		sn.StartSegment, sn.StartOffset, sn.StopSegment, sn.StopOffset}
	if detail {
		row = append(row, strconv.FormatInt(sn.StoredSize, 10), sn.Compression, strconv.FormatBool(sn.Encrypted),
			strconv.Itoa(sn.PGVersion), strconv.FormatUint(uint64(sn.Timeline), 10), sn.StartLSN, sn.FinishLSN,
			sn.StartTime.Format(time.RFC3339), strconv.FormatBool(sn.Permanent))
	}
	return row
}

var detailColumns = []string{"stored_size_bytes", "compression", "encrypted", "pg_version", "timeline",
	"start_lsn", "finish_lsn", "start_time", "permanent"}

func header(detail bool) []string {
	h := append([]string{}, WALEListColumns...)
	if detail {
		h = append(h, detailColumns...)
	}
	return h
}

// WriteListCSV prints WAL-E's columns (with detail, walnut's after them)
// as CSV with a header.
func WriteListCSV(out io.Writer, list []*archive.Sentinel, detail bool, chains map[string]int64) error {
	w := csv.NewWriter(out)
	w.Write(withDelta(list, withSource(list, header(detail), nil), nil, chains))
	for _, sn := range list {
		w.Write(withDelta(list, withSource(list, listRow(sn, detail), sn), sn, chains))
	}
	w.Flush()
	return w.Error()
}

// WriteListJSON prints the backups' sentinels as a JSON array ([] for
// none).
func WriteListJSON(w io.Writer, list []*archive.Sentinel) error {
	if list == nil {
		list = []*archive.Sentinel{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(list)
}

// WriteListTable prints WAL-E's format: a header and one line per backup,
// fields separated by tabs, so scripts that split WAL-E's output on tabs
// read walnut's.
func WriteListTable(w io.Writer, list []*archive.Sentinel, detail bool, chains map[string]int64) error {
	var b strings.Builder
	b.WriteString(strings.Join(withDelta(list, withSource(list, header(detail), nil), nil, chains), "\t") + "\n")
	for _, sn := range list {
		b.WriteString(strings.Join(withDelta(list, withSource(list, listRow(sn, detail), sn), sn, chains), "\t") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// backupNameRE is the form of a backup name, WAL-E's and walnut's.
var backupNameRE = regexp.MustCompile(`^base_[0-9A-F]{24}_[0-9A-F]{8}$`)

// IsBackupName reports whether s has the form of a backup name.
func IsBackupName(s string) bool { return backupNameRE.MatchString(s) }

// SelectBackup keeps the backup query names: LATEST is the one that
// finished last (list is oldest first).
func SelectBackup(list []*archive.Sentinel, query string) []*archive.Sentinel {
	if query == "LATEST" {
		if len(list) == 0 {
			return nil
		}
		return list[len(list)-1:]
	}
	for _, sn := range list {
		if sn.Name == query {
			return []*archive.Sentinel{sn}
		}
	}
	return nil
}

// withSource adds a last column, source ("wal-e" for a backup WAL-E made),
// when the list holds one of WAL-E's: a walnut-only archive lists as
// before, and scripts reading WAL-E's columns by position still work.
func withSource(list []*archive.Sentinel, row []string, sn *archive.Sentinel) []string {
	for _, b := range list {
		if b.IsWALE() {
			if sn == nil {
				return append(row, "source")
			}
			return append(row, sn.Source)
		}
	}
	return row
}

// withDelta adds each delta's base and its chain's stored size (-1: a
// backup of the chain is gone) when a listed backup is a delta; chains is
// ChainSizes of the whole archive.
func withDelta(list []*archive.Sentinel, row []string, sn *archive.Sentinel, chains map[string]int64) []string {
	if !slices.ContainsFunc(list, (*archive.Sentinel).IsDelta) {
		return row
	}
	if sn == nil {
		return append(row, "delta_base", "chain_stored_size_bytes")
	}
	return append(row, sn.DeltaBase, strconv.FormatInt(chains[sn.Name], 10))
}
