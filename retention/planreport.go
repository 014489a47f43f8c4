package retention

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Write prints the plan as JSON or as text; grace is the one the plan was
// made with.
func (plan *Plan) Write(w io.Writer, asJSON, confirm bool, grace time.Duration) error {
	if asJSON {
		return plan.WriteJSON(w, confirm)
	}
	return plan.WriteText(w, confirm, grace)
}

// WriteJSON prints the plan (and what was deleted) as JSON, with its
// totals and whether it was a dry run.
func (plan *Plan) WriteJSON(w io.Writer, confirm bool) error {
	out := struct {
		DryRun bool `json:"dry_run"`
		*Plan
		Objects int   `json:"objects"`
		Bytes   int64 `json:"bytes"`
	}{!confirm, plan, plan.Objects(), plan.Bytes()}
	if out.Backups == nil {
		out.Backups = []BackupDeletion{}
	}
	if out.Unfinished == nil {
		out.Unfinished = []UnfinishedBackup{}
	}
	if out.WAL == nil {
		out.WAL = []WALRange{}
	}
	if out.Temps == nil {
		out.Temps = []TempFile{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteText prints one line per backup and WAL range that goes (or
// went), then one summary line per kind of object; grace is the one the
// plan was made with.
func (plan *Plan) WriteText(w io.Writer, confirm bool, grace time.Duration) error {
	verb := func(done bool) string {
		switch {
		case !confirm:
			return "would delete"
		case done:
			return "deleted"
		}
		return "not deleted"
	}
	var b strings.Builder
	var n struct {
		backups, unfinished, wal, temps int
		bObj, uObj                      int
		bBytes, uBytes, wBytes, tBytes  int64
	}
	for _, d := range plan.Backups {
		fmt.Fprintf(&b, "%s backup %s (finished %s, %d objects, %s)\n", verb(d.Deleted), d.Name, d.FinishTime.UTC().Format(time.RFC3339), d.Objects, humanBytes(d.Bytes))
		if d.Deleted || !confirm {
			n.backups++
			n.bObj += d.Objects
			n.bBytes += d.Bytes
		}
	}
	for _, u := range plan.Unfinished {
		why := "no sentinel, last written " + u.LastModified.UTC().Format(time.RFC3339)
		if u.InterruptedDelete {
			why = "left by an interrupted delete"
		}
		fmt.Fprintf(&b, "%s unfinished backup %s (%s, %d objects, %s)\n", verb(u.Deleted), u.Name, why, u.Objects, humanBytes(u.Bytes))
		if u.Deleted || !confirm {
			n.unfinished++
			n.uObj += u.Objects
			n.uBytes += u.Bytes
		}
	}
	for _, name := range plan.Kept.Unfinished {
		fmt.Fprintf(&b, "kept unfinished backup %s (possibly running: younger than %s) and the WAL from its start\n", name, grace)
	}
	for _, r := range plan.WAL {
		span := r.First
		if r.Last != r.First {
			span += " .. " + r.Last
		}
		fmt.Fprintf(&b, "%s WAL timeline %d: %s (%d objects, %s)\n", verb(r.Deleted), r.Timeline, span, r.Objects, humanBytes(r.Bytes))
		if r.Deleted || !confirm {
			n.wal += r.Objects
			n.wBytes += r.Bytes
		}
	}
	for _, f := range plan.Temps {
		fmt.Fprintf(&b, "%s temp file %s (left by an upload that did not finish, last written %s, %s)\n",
			verb(f.Deleted), f.Key, f.LastModified.UTC().Format(time.RFC3339), humanBytes(f.Bytes))
		if f.Deleted || !confirm {
			n.temps++
			n.tBytes += f.Bytes
		}
	}
	gone := "deleted"
	if !confirm {
		gone = "to delete"
	}
	fmt.Fprintf(&b, "backups: %d %s (%d objects, %s), %d kept", n.backups, gone, n.bObj, humanBytes(n.bBytes), len(plan.Kept.Backups))
	if k := len(plan.Kept.Permanent); k > 0 {
		fmt.Fprintf(&b, " (%d permanent)", k)
	}
	fmt.Fprintf(&b, "\nunfinished backups: %d %s (%d objects, %s), %d kept as possibly running (younger than %s)\n",
		n.unfinished, gone, n.uObj, humanBytes(n.uBytes), len(plan.Kept.Unfinished), grace)
	fmt.Fprintf(&b, "WAL: %d objects %s (%s), %d kept", n.wal, gone, humanBytes(n.wBytes), plan.Kept.WALObjects)
	if plan.Kept.WALFrom != "" {
		fmt.Fprintf(&b, " (all from %s on, any timeline)", plan.Kept.WALFrom)
	}
	b.WriteString("\n")
	if plan.Mode == Garbage {
		fmt.Fprintf(&b, "temp files: %d %s (%s), %d kept as possibly in use (younger than %s)\n",
			n.temps, gone, humanBytes(n.tBytes), plan.Kept.TempFiles, grace)
	}
	if plan.Mode == Everything {
		fmt.Fprintf(&b, "other objects: %d %s\n", len(plan.Other), gone)
		state := "absent"
		if plan.Identity {
			state = gone
		}
		fmt.Fprintf(&b, "archive identity (walnut.json): %s\n", state)
	}
	for _, note := range plan.Notes {
		fmt.Fprintf(&b, "note: %s\n", note)
	}
	switch {
	case plan.Objects() == 0:
		b.WriteString("nothing to delete\n")
	case !confirm:
		b.WriteString("dry run: nothing deleted; add --confirm to delete\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
