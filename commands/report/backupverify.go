package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/walnut-pg/walnut/verify"
)

// WriteBackups prints backup-verify's report: for each backup, one line
// per problem, then its summary.
func WriteBackups(w io.Writer, results []*verify.BackupResult) {
	for _, r := range results {
		for _, p := range r.Problems {
			fmt.Fprintf(w, "FAIL %s\n", strings.Join(strings.Fields(p.String()), " "))
		}
		fmt.Fprintln(w, backupSummary(r))
	}
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
