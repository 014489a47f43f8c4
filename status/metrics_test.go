package status

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ParseMetrics reads a textfile as Prometheus would, failing the test on
// anything its parser refuses.
func parseMetrics(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return fams
}

// value returns the one sample of name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	var found []float64
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			ok = ok && labels[want[i]] == want[i+1]
		}
		if !ok {
			continue
		}
		switch {
		case m.Gauge != nil:
			found = append(found, m.Gauge.GetValue())
		case m.Counter != nil:
			found = append(found, m.Counter.GetValue())
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d samples", name, want, len(found))
	}
	return found[0]
}

func TestPrometheusFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "walnut.prom")
	// A label value that needs escaping, and a second standby of the
	// same name, must still parse.
	s := healthyServer()
	s.Standbys = append(s.Standbys, StandbyReport{ApplicationName: "s2", PID: 99, State: "catchup", WriteLagBytes: ptr(int64(7))})
	nameStandbys(s.Standbys)
	s.ReplicationSlots = []ReplicationSlot{{Name: "idle", Type: "physical", RetainedBytes: ptr(int64(1 << 30))}, {Name: "s1", Type: "physical", Active: true}}
	s.ArchiveLag = archiveLag(s)
	store := testArchive(t)
	r, err := Run(t.Context(), Options{Store: store, Archive: `mem://x"y\z`, Limits: defaultLimits(), Now: fixedNow, PrometheusFile: path})
	if err != nil {
		t.Fatal(err)
	}
	// The server half comes from a fixture: rebuild the file with it.
	r.Server = s
	if err := WritePrometheusFile(path, r); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("metrics file: %v, %v", fi, err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("temp files left beside the metrics: %v", es)
	}
	fams := parseMetrics(t, path)
	for name, f := range fams {
		if !strings.HasPrefix(name, "walnut_") {
			t.Errorf("metric %s is not prefixed walnut_", name)
		}
		for _, m := range f.Metric {
			if m.Label[0].GetName() != "archive" || m.Label[0].GetValue() != `mem://x"y\z` {
				t.Errorf("%s: first label %v", name, m.Label[0])
			}
		}
		if f.GetType() == dto.MetricType_COUNTER && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s does not end in _total", name)
		}
	}
	a := r.Archive
	checks := map[string]float64{
		"walnut_status_state":                           float64(r.State),
		"walnut_archive_up":                             1,
		"walnut_backups":                                float64(a.Backups.Count),
		"walnut_backups_permanent":                      float64(a.Backups.Permanent),
		"walnut_backups_stored_bytes":                   float64(a.Backups.StoredBytes),
		"walnut_newest_backup_age_seconds":              a.Backups.Newest.AgeSeconds,
		"walnut_newest_backup_stored_bytes":             float64(a.Backups.Newest.StoredBytes),
		"walnut_wal_newest_segment_age_seconds":         *a.WAL.NewestSegmentAgeSeconds,
		"walnut_wal_segments":                           float64(a.WAL.Segments),
		"walnut_archiver_archived_total":                9,
		"walnut_archiver_failing":                       0,
		"walnut_archive_lag_segments":                   0,
		"walnut_archive_lag_bytes":                      0x28,
		"walnut_newest_backup_finish_timestamp_seconds": float64(testNow.Add(-3 * 3600 * 1e9).Unix()),
	}
	for name, want := range checks {
		if got := value(t, fams, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := value(t, fams, "walnut_archive_size_bytes", "kind", "wal"); got != float64(a.WALBytes) {
		t.Errorf("WAL bytes %v, want %d", got, a.WALBytes)
	}
	if got := value(t, fams, "walnut_replication_lag_bytes", "standby", "s2-0", "stage", "replay"); got != 5<<20 {
		t.Errorf("replay lag of s2: %v", got)
	}
	if got := value(t, fams, "walnut_replication_lag_seconds", "standby", "s2-0", "stage", "replay"); got != 42 {
		t.Errorf("replay lag seconds of s2: %v", got)
	}
	if got := value(t, fams, "walnut_replication_slot_retained_bytes", "slot", "idle"); got != 1<<30 {
		t.Errorf("idle slot retains %v", got)
	}
	if got := value(t, fams, "walnut_replication_slot_active", "slot", "s1"); got != 1 {
		t.Errorf("slot s1 active %v", got)
	}
	if got := value(t, fams, "walnut_status_check_state", "check", "backup_age"); got != 0 {
		t.Errorf("backup_age check %v", got)
	}
	if got := value(t, fams, "walnut_status_alert", "alert", AlertBackupTooOld); got != 0 {
		t.Errorf("backup_too_old alert %v", got)
	}
}
