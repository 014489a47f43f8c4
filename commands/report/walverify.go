// Package report renders the text commands print for people from what a
// job package returned: wal-verify's and backup-verify's reports (the
// drill's is drill.Report.WriteText) and backup-fetch's closing lines. The JSON forms are the job packages' types, encoded.
package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/walnut-pg/walnut/verify"
)

// WriteWAL prints wal-verify's report as JSON, or for people: the files
// pushed, one line per problem, the timeline path followed, and how far
// each backup restores.
func WriteWAL(w io.Writer, rep *verify.WALReport, pushed []string, asJSON bool) error {
	if asJSON {
		return writeJSON(w, struct {
			OK     bool     `json:"ok"`
			Pushed []string `json:"pushed,omitempty"`
			*verify.WALReport
		}{len(rep.Problems) == 0, pushed, rep})
	}
	for _, p := range pushed {
		fmt.Fprintf(w, "pushed %s\n", p)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "FAIL %s\n", strings.Join(strings.Fields(p.String()), " "))
	}
	var path []string
	for _, s := range rep.Path {
		path = append(path, fmt.Sprintf("timeline %d from %s", s.Timeline, s.From))
	}
	if len(path) > 0 {
		fmt.Fprintf(w, "path: %s; newest segment %s; %d segments archived on the way\n", strings.Join(path, ", then "), orNone(rep.Newest), rep.Segments)
	}
	for _, b := range rep.Backups {
		switch {
		case b.Restorable:
			fmt.Fprintf(w, "backup %s: restorable to %s (end of %s, archived %s) on timeline %d", b.Name, b.To, b.LastSegment, b.ArchivedAt.UTC().Format(time.RFC3339), b.Follows)
		default:
			fmt.Fprintf(w, "backup %s: NOT restorable", b.Name)
			if b.Note != "" {
				fmt.Fprintf(w, ": %s", b.Note)
			}
			fmt.Fprintln(w)
			continue
		}
		if b.Note != "" {
			fmt.Fprintf(w, "; %s", b.Note)
		}
		fmt.Fprintln(w)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(rep.Problems) == 0 {
		fmt.Fprintln(w, "ok: no gaps")
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
