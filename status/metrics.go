package status

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The Prometheus text exposition format is written here by hand rather
// than through prometheus/common's expfmt: that would link protobuf (the
// client model's metric families) into the binary that every wal-push and
// wal-fetch starts, for a few lines of text. The tests read the output with
// expfmt's parser.

type label struct{ name, value string }

type sample struct {
	labels []label
	value  float64
}

type family struct {
	name, typ, help string
	samples         []sample
}

// metrics collects families in the order they are first added.
type metrics struct {
	base  []label
	fams  []*family
	index map[string]*family
}

func newMetrics(base ...label) *metrics {
	return &metrics{base: base, index: map[string]*family{}}
}

// add records one sample; labels come as name, value pairs after the base
// labels every sample carries.
func (m *metrics) add(name, typ, help string, v float64, labels ...string) {
	f := m.index[name]
	if f == nil {
		f = &family{name: name, typ: typ, help: help}
		m.index[name] = f
		m.fams = append(m.fams, f)
	}
	ls := append([]label(nil), m.base...)
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, label{labels[i], labels[i+1]})
	}
	f.samples = append(f.samples, sample{labels: ls, value: v})
}

func (m *metrics) gauge(name, help string, v float64, labels ...string) {
	m.add(name, "gauge", help, v, labels...)
}

func (m *metrics) counter(name, help string, v float64, labels ...string) {
	m.add(name, "counter", help, v, labels...)
}

func (m *metrics) write(w io.Writer) error {
	var b bytes.Buffer
	for _, f := range m.fams {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.typ)
		for _, s := range f.samples {
			b.WriteString(f.name)
			if len(s.labels) > 0 {
				b.WriteByte('{')
				for i, l := range s.labels {
					if i > 0 {
						b.WriteByte(',')
					}
					b.WriteString(l.name)
					b.WriteString(`="`)
					b.WriteString(escapeLabel(l.value))
					b.WriteByte('"')
				}
				b.WriteByte('}')
			}
			b.WriteByte(' ')
			b.WriteString(formatValue(s.value))
			b.WriteByte('\n')
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// buildMetrics turns a report into metrics named walnut_*, labelled by
// archive (and by check, standby or slot where that applies). A figure
// that was not measured is left out rather than given a made-up value.
func buildMetrics(r *Report) *metrics {
	m := newMetrics(label{"archive", r.Archive.Prefix})
	m.gauge("walnut_status_state", "Overall state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the exit code of walnut status).", float64(r.State))
	for _, c := range r.Checks {
		m.gauge("walnut_status_check_state", "State of one check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", float64(c.State), "check", c.Name)
	}
	for _, c := range r.Checks {
		if !c.measured {
			continue
		}
		for _, a := range c.owns {
			m.gauge("walnut_status_alert", "1 while the alert file of that name is active (written with --alert-dir or not).", boolValue(c.Alert == a), "alert", a)
		}
	}
	m.gauge("walnut_status_timestamp_seconds", "When walnut status measured, in seconds since the Unix epoch.", unixSeconds(r.CheckedAt))
	m.gauge("walnut_status_duration_seconds", "How long the measurement took.", r.DurationSeconds)

	a := &r.Archive
	m.gauge("walnut_archive_up", "1 if the store answered and holds a walnut archive (walnut.json), else 0.", boolValue(a.Error == nil))
	if a.Error == nil {
		m.gauge("walnut_archive_objects", "Objects under the prefix.", float64(a.Objects))
		m.gauge("walnut_archive_size_bytes", "Bytes stored under the prefix, by kind: wal/, backups/ (unfinished backups too), anything else.", float64(a.WALBytes), "kind", "wal")
		m.gauge("walnut_archive_size_bytes", "", float64(a.BackupsBytes), "kind", "backups")
		m.gauge("walnut_archive_size_bytes", "", float64(a.OtherBytes), "kind", "other")
		m.gauge("walnut_wal_objects", "Objects under wal/: segments, history, backup history and partial files.", float64(a.WAL.Objects))
		m.gauge("walnut_wal_segments", "Whole WAL segments in the archive (not history, backup history or partial files).", float64(a.WAL.Segments))
		if a.WAL.NewestSegmentStoredAt != nil {
			m.gauge("walnut_wal_newest_segment_stored_timestamp_seconds", "When the store says the highest-named WAL segment was stored, in seconds since the Unix epoch.", unixSeconds(*a.WAL.NewestSegmentStoredAt))
			m.gauge("walnut_wal_newest_segment_age_seconds", "Seconds since the highest-named WAL segment was stored.", *a.WAL.NewestSegmentAgeSeconds)
		}
		b := &a.Backups
		m.gauge("walnut_backups", "Committed backups (with a sentinel), permanent ones included.", float64(b.Count))
		m.gauge("walnut_backups_permanent", "Committed backups marked permanent.", float64(b.Permanent))
		m.gauge("walnut_backups_stored_bytes", "Bytes the committed backups take in the store, from their sentinels.", float64(b.StoredBytes))
		m.gauge("walnut_backups_expanded_bytes", "Bytes the committed backups take once restored, from their sentinels.", float64(b.ExpandedBytes))
		if n := b.Newest; n != nil {
			m.gauge("walnut_newest_backup_finish_timestamp_seconds", "When the newest backup finished, in seconds since the Unix epoch.", unixSeconds(n.FinishTime))
			m.gauge("walnut_newest_backup_age_seconds", "Seconds since the newest backup finished.", n.AgeSeconds)
			m.gauge("walnut_newest_backup_stored_bytes", "Bytes the newest backup takes in the store.", float64(n.StoredBytes))
			m.gauge("walnut_newest_backup_expanded_bytes", "Bytes the newest backup takes once restored.", float64(n.ExpandedBytes))
		}
	}

	s := r.Server
	if s == nil {
		return m
	}
	m.gauge("walnut_server_up", "1 if the server answered every query, else 0.", boolValue(s.Error == nil))
	if s.Error != nil {
		return m
	}
	m.gauge("walnut_server_in_recovery", "1 on a standby, 0 on a primary.", boolValue(s.InRecovery))
	ar := &s.Archiver
	m.counter("walnut_archiver_archived_total", "WAL files archived (pg_stat_archiver.archived_count).", float64(ar.ArchivedCount))
	m.counter("walnut_archiver_failed_total", "Failed archive_command runs (pg_stat_archiver.failed_count).", float64(ar.FailedCount))
	if ar.LastArchivedTime != nil {
		m.gauge("walnut_archiver_last_archived_timestamp_seconds", "pg_stat_archiver.last_archived_time, in seconds since the Unix epoch.", unixSeconds(*ar.LastArchivedTime))
		m.gauge("walnut_archiver_last_archived_age_seconds", "Seconds since the last successful archive_command, by the server's clock.", *ar.SecondsSinceLastArchived)
	}
	if ar.LastFailedTime != nil {
		m.gauge("walnut_archiver_last_failed_timestamp_seconds", "pg_stat_archiver.last_failed_time, in seconds since the Unix epoch.", unixSeconds(*ar.LastFailedTime))
	}
	m.gauge("walnut_archiver_failing", "1 while the archiver's latest attempt failed.", boolValue(ar.Failing))
	if ar.FailingSeconds != nil {
		m.gauge("walnut_archiver_failing_seconds", "Seconds archiving has been failing: since the last success, or the server's start if later.", *ar.FailingSeconds)
	}
	if lag := s.ArchiveLag; lag != nil {
		m.gauge("walnut_archive_lag_segments", "Complete WAL segments written but not archived yet.", float64(lag.Segments))
		m.gauge("walnut_archive_lag_bytes", "WAL bytes written after the end of the last archived segment.", float64(lag.Bytes))
	}
	for _, st := range s.Standbys {
		m.gauge("walnut_replication_standby_info", "One per connected standby (pg_stat_replication), with its state and sync_state.", 1,
			"standby", st.Name, "application_name", st.ApplicationName, "client_addr", st.ClientAddr, "state", st.State, "sync_state", st.SyncState)
		for _, x := range []struct {
			stage string
			b     *int64
			sec   *float64
		}{{"write", st.WriteLagBytes, st.WriteLagSeconds}, {"flush", st.FlushLagBytes, st.FlushLagSeconds}, {"replay", st.ReplayLagBytes, st.ReplayLagSeconds}} {
			if x.b != nil {
				m.gauge("walnut_replication_lag_bytes", "WAL bytes between the server's current position and what the standby has written, flushed or replayed.", float64(*x.b), "standby", st.Name, "stage", x.stage)
			}
			if x.sec != nil {
				m.gauge("walnut_replication_lag_seconds", "PostgreSQL's write_lag, flush_lag and replay_lag of the standby.", *x.sec, "standby", st.Name, "stage", x.stage)
			}
		}
	}
	for _, sl := range s.ReplicationSlots {
		m.gauge("walnut_replication_slot_active", "1 if the replication slot is in use.", boolValue(sl.Active), "slot", sl.Name, "slot_type", sl.Type)
		if sl.RetainedBytes != nil {
			m.gauge("walnut_replication_slot_retained_bytes", "WAL bytes the replication slot keeps on the server.", float64(*sl.RetainedBytes), "slot", sl.Name, "slot_type", sl.Type)
		}
	}
	return m
}

// WritePrometheusFile writes r as node_exporter textfile metrics, whole or
// not at all: a temporary file beside path (whose name node_exporter does
// not read, it reads *.prom only), then a rename, so a scrape never sees
// half a file. The file is world-readable: node_exporter runs as its own
// user.
func WritePrometheusFile(path string, r *Report) error {
	var b bytes.Buffer
	if err := buildMetrics(r).write(&b); err != nil {
		return err
	}
	return writeFileAtomic(path, b.Bytes(), 0o644)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	// Synced before the rename, so that a crash cannot leave an empty file
	// under the real name.
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
