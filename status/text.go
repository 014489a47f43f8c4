package status

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// WriteText prints r for a person: the summary line first (what Nagios
// shows), then the checks and the figures behind them.
func WriteText(w io.Writer, r *Report) error {
	if _, err := fmt.Fprintf(w, "%s\n\n", r.Summary); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATE\tVALUE\tWARNING\tCRITICAL\tMESSAGE")
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.State, inUnit(c.Value, c.Unit), inUnit(c.Warning, c.Unit), inUnit(c.Critical, c.Unit), c.Message)
	}
	fmt.Fprintln(tw)

	a := &r.Archive
	fmt.Fprintf(tw, "archive\t%s\n", a.Prefix)
	if a.Error != nil {
		fmt.Fprintf(tw, "  error\t%s\n", *a.Error)
	} else {
		b := &a.Backups
		fmt.Fprintf(tw, "  backups\t%d (%d permanent), %s stored, %s restored\n", b.Count, b.Permanent, Bytes(b.StoredBytes), Bytes(b.ExpandedBytes))
		if n := b.Newest; n != nil {
			fmt.Fprintf(tw, "  newest backup\t%s finished %s (%s ago), %s stored\n", n.Name, n.FinishTime.UTC().Format(time.RFC3339), seconds(n.AgeSeconds), Bytes(n.StoredBytes))
		}
		seg := "none"
		if a.WAL.NewestSegment != nil {
			seg = fmt.Sprintf("%s stored %s (%s ago)", *a.WAL.NewestSegment, a.WAL.NewestSegmentStoredAt.UTC().Format(time.RFC3339), seconds(*a.WAL.NewestSegmentAgeSeconds))
		}
		fmt.Fprintf(tw, "  WAL\t%d objects (%d segments); newest segment %s\n", a.WAL.Objects, a.WAL.Segments, seg)
		fmt.Fprintf(tw, "  size\t%s in %d objects: WAL %s, backups %s, other %s\n", Bytes(a.TotalBytes), a.Objects, Bytes(a.WALBytes), Bytes(a.BackupsBytes), Bytes(a.OtherBytes))
	}

	s := r.Server
	switch {
	case s == nil:
		fmt.Fprintln(tw, "server\tnot checked (--no-server)")
	case s.Error != nil:
		fmt.Fprintf(tw, "server\t%s\n", *s.Error)
	default:
		role := "primary"
		if s.InRecovery {
			role = "standby"
		}
		fmt.Fprintf(tw, "server\tPostgreSQL %d, %s, archive_mode %s, WAL at %s\n", s.VersionNum, role, s.ArchiveMode, deref(s.CurrentLSN))
		ar := &s.Archiver
		last := "nothing archived"
		if ar.LastArchivedWAL != nil && ar.LastArchivedTime != nil {
			last = fmt.Sprintf("last %s at %s (%s ago)", *ar.LastArchivedWAL, ar.LastArchivedTime.Format(time.RFC3339), seconds(*ar.SecondsSinceLastArchived))
		}
		failed := ""
		if ar.LastFailedWAL != nil && ar.LastFailedTime != nil {
			failed = fmt.Sprintf(", last %s at %s", *ar.LastFailedWAL, ar.LastFailedTime.Format(time.RFC3339))
		}
		fmt.Fprintf(tw, "  archiver\tarchived %d, %s; failed %d%s\n", ar.ArchivedCount, last, ar.FailedCount, failed)
		if lag := s.ArchiveLag; lag != nil {
			fmt.Fprintf(tw, "  archive lag\t%d segments, %s\n", lag.Segments, Bytes(lag.Bytes))
		}
		for _, st := range s.Standbys {
			fmt.Fprintf(tw, "  standby %s\t%s (%s) from %s: lag write %s/%s, flush %s/%s, replay %s/%s\n", st.Name, st.State, st.SyncState, orLocal(st.ClientAddr),
				bytesOrDash(st.WriteLagBytes), secondsOrDash(st.WriteLagSeconds),
				bytesOrDash(st.FlushLagBytes), secondsOrDash(st.FlushLagSeconds),
				bytesOrDash(st.ReplayLagBytes), secondsOrDash(st.ReplayLagSeconds))
		}
		for _, sl := range s.ReplicationSlots {
			active := "inactive"
			if sl.Active {
				active = "active"
			}
			fmt.Fprintf(tw, "  slot %s\t%s, %s, retains %s\n", sl.Name, sl.Type, active, bytesOrDash(sl.RetainedBytes))
		}
	}
	if len(r.Alerts) > 0 {
		fmt.Fprintf(tw, "alerts\t%v\n", r.Alerts)
	}
	return tw.Flush()
}

func inUnit(v *float64, unit string) string {
	if v == nil {
		return "-"
	}
	switch unit {
	case "seconds":
		return seconds(*v)
	case "bytes":
		return Bytes(int64(*v))
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

func bytesOrDash(v *int64) string {
	if v == nil {
		return "-"
	}
	return Bytes(*v)
}

func secondsOrDash(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 3, 64) + "s"
}

func orLocal(addr string) string {
	if addr == "" {
		return "local socket"
	}
	return addr
}

// Write prints the report as JSON or as text.
func Write(w io.Writer, r *Report, asJSON bool) error {
	if asJSON {
		return WriteJSON(w, r)
	}
	return WriteText(w, r)
}

// WriteJSON prints every figure of the report as JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
