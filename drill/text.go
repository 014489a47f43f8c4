package drill

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Write prints the report as JSON, or for people (WriteText).
func (r *Report) Write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	r.WriteText(w)
	return nil
}

// WriteText prints the drill's report for people: the backup, the
// restore's and recovery's times, each database's size and rows (or the
// query's result), the cleanup, and the verdict on the last line.
func (r *Report) WriteText(w io.Writer) {
	if r.Backup == "" {
		return
	}
	fmt.Fprintf(w, "backup %s (PostgreSQL %d) in %s\n", r.Backup, r.PGVersion/10000, r.Scratch)
	if r.RestoreSeconds > 0 {
		fmt.Fprintf(w, "restore: %d files, %d bytes in %.1fs\n", r.Files, r.Bytes, r.RestoreSeconds)
	}
	if r.OK || r.ConsistentSeconds > 0 && len(r.Databases) > 0 {
		fmt.Fprintf(w, "consistent: recovered to %s and promoted (timeline %d) in %.1fs\n", r.ConsistentLSN, r.Timeline, r.ConsistentSeconds)
	}
	for _, d := range r.Databases {
		fmt.Fprintf(w, "database %s: %d bytes", d.Name, d.SizeBytes)
		if d.Query == nil {
			fmt.Fprintf(w, ", %d tables, %d rows\n", len(d.Tables), d.Rows)
			for _, t := range d.Tables {
				fmt.Fprintf(w, "  %s: %d rows\n", t.Table, t.Rows)
			}
			continue
		}
		fmt.Fprintf(w, ", query returned %d rows\n", len(d.Query.Rows))
		fmt.Fprintf(w, "  %s\n", strings.Join(d.Query.Columns, " | "))
		for _, row := range d.Query.Rows {
			fmt.Fprintf(w, "  %s\n", strings.Join(row, " | "))
		}
		if d.Query.Truncated {
			fmt.Fprintf(w, "  ...\n")
		}
	}
	if r.Cleanup != "" {
		fmt.Fprintf(w, "cleanup: %s\n", r.Cleanup)
	}
	status := "ok"
	if !r.OK {
		status = "FAIL: " + strings.Join(strings.Fields(r.Error), " ")
	}
	fmt.Fprintf(w, "drill %s\n", status)
}
