package report

import (
	"fmt"
	"io"
	"strings"

	"encoding/json"
	"github.com/walnut-pg/walnut/verify"
)

// WriteBackups prints backup-verify's report, as JSON or for people (for
// each backup, one line per problem, then its summary), and returns how
// many backups have problems.
func WriteBackups(w io.Writer, results []*verify.BackupResult, asJSON bool) (bad int, err error) {
	for _, r := range results {
		if !r.OK() {
			bad++
		}
	}
	if asJSON {
		return bad, writeJSON(w, struct {
			OK      bool                   `json:"ok"`
			Backups []*verify.BackupResult `json:"backups"`
		}{bad == 0, results})
	}
	for _, r := range results {
		for _, p := range r.Problems {
			fmt.Fprintf(w, "FAIL %s\n", strings.Join(strings.Fields(p.String()), " "))
		}
		fmt.Fprintln(w, backupSummary(r))
	}
	return bad, nil
}

// writeJSON is the JSON form: indented, as every command's --json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// backupSummary is backup-verify's last line for a backup.
func backupSummary(r *verify.BackupResult) string {
	status, problems := "ok  ", ""
	if !r.OK() {
		status, problems = "FAIL", fmt.Sprintf("%d problems; ", len(r.Problems))
	}
	wal := fmt.Sprintf("%d WAL segments (%s to %s)", r.WALSegments, r.FirstWAL, r.LastWAL)
	if r.FirstWAL == "" {
		wal = "no WAL segments"
	}
	return fmt.Sprintf("%s %s: %s%d files in %d partitions (%d bytes) and %s decode and match their manifests and digests",
		status, r.Name, problems, r.Files, r.Partitions, r.Bytes, wal)
}
