package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/status"
)

// walnut status against a primary with a streaming standby, on file://
// and on MinIO. One pair of clusters serves every step, in an order that
// leaves each step's cluster as the next expects it: healthy, a backup
// past its age, a paused standby, a failing archive_command and its fix,
// and last the store going away.
func TestStatus(t *testing.T) {
	kinds := []struct {
		name string
		new  func(t *testing.T) (a *archive, stopStore func())
	}{
		{"file", func(t *testing.T) (*archive, func()) {
			a := newArchive(t)
			// A file:// store that cannot be read is what an NFS mount
			// gone bad looks like to walnut; root (the test) can still
			// clean it up.
			return a, func() {
				if err := os.Chmod(a.Path, 0); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chmod(a.Path, 0o750) })
			}
		}},
		{"minio", func(t *testing.T) (*archive, func()) {
			m := startMinIO(t)
			return newS3Archive(t, m, ""), m.Stop
		}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			a, stopStore := k.new(t)
			statusScenario(t, a, stopStore)
		})
	}
}

// statusRun is one walnut status run with --json, a metrics file and an
// alert directory; the report is read back from stdout.
type statusRun struct {
	result
	Report status.Report
}

type statusHarness struct {
	t              *testing.T
	a              *archive
	primary        *testpg.Cluster
	prom, alertDir string
}

func (h *statusHarness) run(args ...string) statusRun {
	h.t.Helper()
	full := append([]string{"status", "--json", "--prometheus-file", h.prom, "--alert-dir", h.alertDir}, args...)
	r := run(h.t, "", env(h.a, h.primary), full...)
	sr := statusRun{result: r}
	if err := json.Unmarshal([]byte(r.Stdout), &sr.Report); err != nil {
		h.t.Fatalf("walnut status --json: %v\n%s", err, r)
	}
	if r.Code != int(sr.Report.State) {
		h.t.Fatalf("exit %d for state %s\n%s", r.Code, sr.Report.State, r)
	}
	h.checkMetrics(r.Stdout)
	return sr
}

// poll runs status until done accepts a run, for up to a minute.
func (h *statusHarness) poll(what string, done func(statusRun) bool, args ...string) statusRun {
	h.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r := h.run(args...)
		if done(r) {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not within a minute; last run:\n%s", what, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// alerts lists the alert directory.
func (h *statusHarness) alerts() []string {
	h.t.Helper()
	es, err := os.ReadDir(h.alertDir)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func (h *statusHarness) wantAlerts(want ...string) {
	h.t.Helper()
	slices.Sort(want)
	if got := h.alerts(); !slices.Equal(got, want) {
		h.t.Errorf("alert files %q, want %q", got, want)
	}
}

// checkMetrics reads the metrics file with Prometheus's own parser and
// holds every sample in it against the JSON of the same run, read by
// field name rather than through status.Report, so a renamed JSON field
// fails here too: each sample must be one the JSON accounts for, with the
// JSON's value, and each figure the JSON has must be in the file.
func (h *statusHarness) checkMetrics(stdout string) {
	t := h.t
	t.Helper()
	var j map[string]any
	if err := json.Unmarshal([]byte(stdout), &j); err != nil {
		t.Fatal(err)
	}
	want := expectedMetrics(t, j)
	f, err := os.Open(h.prom)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("Prometheus cannot parse %s: %v", h.prom, err)
	}
	active := map[string]bool{}
	for _, a := range j["alerts"].([]any) {
		active[a.(string)] = true
	}
	seen := map[string]bool{}
	for name, fam := range fams {
		for _, m := range fam.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["archive"] != jget(j, "archive", "prefix") {
				t.Errorf("%s: archive label %q, want %q", name, labels["archive"], jget(j, "archive", "prefix"))
			}
			delete(labels, "archive")
			v := m.GetGauge().GetValue()
			if fam.GetType() == dto.MetricType_COUNTER {
				v = m.GetCounter().GetValue()
			}
			if name == "walnut_status_alert" {
				if a := labels["alert"]; v != boolFloat(active[a]) {
					t.Errorf("alert %s is %v in the metrics; JSON alerts %v", a, v, j["alerts"])
				} else if v == 1 {
					seen["alert "+a] = true
				}
				continue
			}
			k := metricKey(name, labels)
			w, ok := want[k]
			switch {
			case !ok:
				t.Errorf("metric %s = %v has no figure in the JSON", k, v)
			case math.Abs(w-v) > 1e-6*math.Max(1, math.Abs(w)):
				t.Errorf("metric %s = %v, JSON says %v", k, v, w)
			}
			seen[k] = true
		}
	}
	for k, w := range want {
		if !seen[k] {
			t.Errorf("JSON figure %s = %v is not in the metrics file", k, w)
		}
	}
	for a := range active {
		if !seen["alert "+a] {
			t.Errorf("active alert %s is not 1 in the metrics file", a)
		}
	}
}

// expectedMetrics is every sample the metrics file should hold for the
// JSON report j (walnut_status_alert aside), keyed by metricKey.
func expectedMetrics(t *testing.T, j map[string]any) map[string]float64 {
	t.Helper()
	want := map[string]float64{}
	set := func(v any, name string, labels ...string) {
		t.Helper()
		var f float64
		switch v := v.(type) {
		case float64:
			f = v
		case bool:
			f = boolFloat(v)
		case string: // a state or a time
			var st status.State
			if err := st.UnmarshalText([]byte(v)); err == nil {
				f = float64(st)
				break
			}
			tm, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				t.Fatalf("%s: JSON value %q", name, v)
			}
			f = float64(tm.UnixNano()) / 1e9
		default:
			t.Fatalf("%s: JSON value %v (%T): a field missing or renamed?", name, v, v)
		}
		l := map[string]string{}
		for i := 0; i+1 < len(labels); i += 2 {
			l[labels[i]] = labels[i+1]
		}
		want[metricKey(name, l)] = f
	}
	set(j["state"], "walnut_status_state")
	for _, c := range j["checks"].([]any) {
		c := c.(map[string]any)
		set(c["state"], "walnut_status_check_state", "check", c["name"].(string))
	}
	set(j["checked_at"], "walnut_status_timestamp_seconds")
	set(j["duration_seconds"], "walnut_status_duration_seconds")

	a := j["archive"].(map[string]any)
	set(a["error"] == nil, "walnut_archive_up")
	if a["error"] == nil {
		set(a["objects"], "walnut_archive_objects")
		set(a["wal_bytes"], "walnut_archive_size_bytes", "kind", "wal")
		set(a["backups_bytes"], "walnut_archive_size_bytes", "kind", "backups")
		set(a["other_bytes"], "walnut_archive_size_bytes", "kind", "other")
		w := a["wal"].(map[string]any)
		set(w["objects"], "walnut_wal_objects")
		set(w["segments"], "walnut_wal_segments")
		if w["newest_segment_stored_at"] != nil {
			set(w["newest_segment_stored_at"], "walnut_wal_newest_segment_stored_timestamp_seconds")
			set(w["newest_segment_age_seconds"], "walnut_wal_newest_segment_age_seconds")
		}
		b := a["backups"].(map[string]any)
		set(b["count"], "walnut_backups")
		set(b["permanent"], "walnut_backups_permanent")
		set(b["stored_bytes"], "walnut_backups_stored_bytes")
		set(b["expanded_bytes"], "walnut_backups_expanded_bytes")
		if n, ok := b["newest"].(map[string]any); ok {
			set(n["finish_time"], "walnut_newest_backup_finish_timestamp_seconds")
			set(n["age_seconds"], "walnut_newest_backup_age_seconds")
			set(n["stored_bytes"], "walnut_newest_backup_stored_bytes")
			set(n["expanded_bytes"], "walnut_newest_backup_expanded_bytes")
		}
	}

	s, ok := j["server"].(map[string]any)
	if !ok {
		return want
	}
	set(s["error"] == nil, "walnut_server_up")
	if s["error"] != nil {
		return want
	}
	set(s["in_recovery"], "walnut_server_in_recovery")
	ar := s["archiver"].(map[string]any)
	set(ar["archived_count"], "walnut_archiver_archived_total")
	set(ar["failed_count"], "walnut_archiver_failed_total")
	if ar["last_archived_time"] != nil {
		set(ar["last_archived_time"], "walnut_archiver_last_archived_timestamp_seconds")
		set(ar["seconds_since_last_archived"], "walnut_archiver_last_archived_age_seconds")
	}
	if ar["last_failed_time"] != nil {
		set(ar["last_failed_time"], "walnut_archiver_last_failed_timestamp_seconds")
	}
	set(ar["failing"], "walnut_archiver_failing")
	if ar["failing_seconds"] != nil {
		set(ar["failing_seconds"], "walnut_archiver_failing_seconds")
	}
	if lag, ok := s["archive_lag"].(map[string]any); ok {
		set(lag["segments"], "walnut_archive_lag_segments")
		set(lag["bytes"], "walnut_archive_lag_bytes")
	}
	standbys, _ := s["standbys"].([]any)
	for _, st := range standbys {
		st := st.(map[string]any)
		name := st["name"].(string)
		set(true, "walnut_replication_standby_info", "standby", name, "application_name", st["application_name"].(string),
			"client_addr", st["client_addr"].(string), "state", st["state"].(string), "sync_state", st["sync_state"].(string))
		for _, stage := range []string{"write", "flush", "replay"} {
			if v := st[stage+"_lag_bytes"]; v != nil {
				set(v, "walnut_replication_lag_bytes", "standby", name, "stage", stage)
			}
			if v := st[stage+"_lag_seconds"]; v != nil {
				set(v, "walnut_replication_lag_seconds", "standby", name, "stage", stage)
			}
		}
	}
	slots, _ := s["replication_slots"].([]any)
	for _, sl := range slots {
		sl := sl.(map[string]any)
		name, typ := sl["name"].(string), sl["type"].(string)
		set(sl["active"], "walnut_replication_slot_active", "slot", name, "slot_type", typ)
		if sl["retained_bytes"] != nil {
			set(sl["retained_bytes"], "walnut_replication_slot_retained_bytes", "slot", name, "slot_type", typ)
		}
	}
	return want
}

// metricKey names one sample: the metric and its labels in order.
func metricKey(name string, labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	var b strings.Builder
	b.WriteString(name)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%q", k, labels[k])
	}
	return b.String()
}

// jget reads a string at a path of JSON object keys ("" if absent).
func jget(j map[string]any, path ...string) string {
	var v any = j
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func statusScenario(t *testing.T, a *archive, stopStore func()) {
	primary := archivingCluster(t, a, nil)
	primary.Pgbench(t, "-i", "-s", "1", "-q")
	backup := strings.TrimSpace(mustRun(t, "", env(a, primary), "backup-push", primary.DataDir).Stdout)

	standbyDir := filepath.Join(testpg.SharedTempDir(t), "standby")
	out, err := primary.Command(t.Context(), nil, filepath.Join(primary.BinDir, "pg_basebackup"),
		"-D", standbyDir, "-R", "-X", "stream", "-c", "fast", "-C", "-S", "standby1").CombinedOutput()
	if err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	// cluster_name names the standby in pg_stat_replication; replies
	// every second let a resumed standby's replay show without waiting
	// for more WAL.
	standby := testpg.Start(t, standbyDir, testpg.Options{
		Conf: map[string]string{"cluster_name": "standby1", "wal_receiver_status_interval": "1"},
		Env:  append([]string{"WALNUT_PREFIX=" + a.Prefix}, a.Env...),
	})
	primary.Exec(t, "SELECT pg_create_physical_replication_slot('idle', true)")
	switchAndWaitArchived(t, primary)
	waitReplayed(t, primary, standby)
	waitReplayReported(t, primary, "standby1")

	dir := testpg.SharedTempDir(t)
	h := &statusHarness{t: t, a: a, primary: primary, prom: filepath.Join(dir, "walnut.prom"), alertDir: filepath.Join(dir, "alerts")}
	lag := "--max-replication-lag=1MB"

	t.Run("healthy", func(t *testing.T) {
		h.t = t
		r := h.run(lag)
		rep := r.Report
		if rep.State != status.OK || len(rep.Alerts) != 0 {
			t.Fatalf("healthy primary: %s", r)
		}
		h.wantAlerts()
		// The figures agree with the server's own.
		var count int64
		var last string
		row := primary.QueryString(t, "SELECT archived_count || ' ' || last_archived_wal FROM pg_stat_archiver")
		if _, err := fmt.Sscan(row, &count, &last); err != nil {
			t.Fatal(err)
		}
		ar := rep.Server.Archiver
		if ar.ArchivedCount != count || ar.LastArchivedWAL == nil || *ar.LastArchivedWAL != last || ar.Failing ||
			ar.LastArchivedInArchive == nil || !*ar.LastArchivedInArchive {
			t.Errorf("archiver %+v; pg_stat_archiver says %d, %s", ar, count, last)
		}
		// After a backup the last file archived may be its .backup file,
		// named after its segment.
		if w := rep.Archive.WAL; w.NewestSegment == nil || *w.NewestSegment != last[:24] {
			t.Errorf("newest segment in the archive %v, pg_stat_archiver's last %s", w.NewestSegment, last)
		}
		if lagged := rep.Server.ArchiveLag; lagged == nil || lagged.Segments != 0 {
			t.Errorf("archive lag %+v after everything was archived", lagged)
		}
		if b := rep.Archive.Backups; b.Count != 1 || b.Newest == nil || b.Newest.Name != backup || b.StoredBytes <= 0 || b.Newest.AgeSeconds <= 0 {
			t.Errorf("backups %+v, want %s", b, backup)
		}
		if rep.Archive.WALBytes <= 0 || rep.Archive.BackupsBytes < rep.Archive.Backups.StoredBytes {
			t.Errorf("sizes: WAL %d, backups %d", rep.Archive.WALBytes, rep.Archive.BackupsBytes)
		}
		if ss := rep.Server.Standbys; len(ss) != 1 || ss[0].Name != "standby1" || ss[0].State != "streaming" || ss[0].ReplayLagBytes == nil {
			t.Errorf("standbys %+v", ss)
		}
		slots := map[string]status.ReplicationSlot{}
		for _, s := range rep.Server.ReplicationSlots {
			slots[s.Name] = s
		}
		if s := slots["standby1"]; !s.Active {
			t.Errorf("slot standby1 %+v, want active", s)
		}
		if s := slots["idle"]; s.Active || s.RetainedBytes == nil || *s.RetainedBytes <= 0 {
			t.Errorf("slot idle %+v, want inactive and retaining WAL", s)
		}
		// The human form: the summary first.
		human := mustRun(t, "", env(a, primary), "status", lag)
		if !strings.HasPrefix(human.Stdout, "WALNUT OK: newest backup "+backup) || !strings.Contains(human.Stdout, "standby standby1") {
			t.Errorf("human form:\n%s", human.Stdout)
		}
		alone := mustRun(t, "", env(a, nil), "status", "--no-server")
		if first, _, _ := strings.Cut(alone.Stdout, "\n"); !strings.HasSuffix(first, "(archive only: no server checked)") {
			t.Errorf("--no-server:\n%s", alone.Stdout)
		}
		// PGDATA must be the server's.
		if r := run(t, "", env(a, primary), "status", standbyDir); r.Code != int(status.Unknown) || !strings.Contains(r.Stdout, "not PGDATA") {
			t.Errorf("status with the standby's PGDATA against the primary:\n%s", r)
		}
	})

	t.Run("backup too old", func(t *testing.T) {
		h.t = t
		if r := h.run(lag, "--max-backup-age", "0s"); r.Code != int(status.Critical) || !strings.HasPrefix(r.Report.Summary, "WALNUT CRITICAL: newest backup "+backup) {
			t.Errorf("backup age past the critical bound:\n%s", r)
		}
		h.wantAlerts(status.AlertBackupTooOld)
		if r := h.run(lag, "--max-backup-age", "0s,1h"); r.Code != int(status.Warning) {
			t.Errorf("backup age past the warning bound:\n%s", r)
		}
		h.wantAlerts(status.AlertBackupTooOld)
		h.run(lag)
		h.wantAlerts()
	})

	t.Run("standby paused", func(t *testing.T) {
		h.t = t
		standby.Exec(t, "SELECT pg_wal_replay_pause()")
		primary.Exec(t, "CREATE TABLE filler1 AS SELECT g, repeat('x', 100) AS x FROM generate_series(1, 20000) g")
		first := h.poll("replay lag past 1MB", func(r statusRun) bool { return r.Code == int(status.Critical) }, lag)
		h.wantAlerts(status.AlertReplicationLagCrit)
		if !strings.Contains(first.Report.Summary, "most behind: standby1") {
			t.Errorf("summary does not name the standby: %s", first.Report.Summary)
		}
		primary.Exec(t, "CREATE TABLE filler2 AS SELECT g, repeat('x', 100) AS x FROM generate_series(1, 20000) g")
		second := h.run("--max-replication-lag=1MB,1GB")
		if second.Code != int(status.Warning) {
			t.Errorf("replay lag between the bounds:\n%s", second)
		}
		h.wantAlerts(status.AlertReplicationLagWarning)
		l1, l2 := first.Report.Server.Standbys[0].ReplayLagBytes, second.Report.Server.Standbys[0].ReplayLagBytes
		if l1 == nil || l2 == nil || *l2 <= *l1 {
			t.Errorf("replay lag did not grow while paused: %v then %v", deref(l1), deref(l2))
		}
		t.Logf("paused standby: replay lag %d then %d bytes, %v seconds", deref(l1), deref(l2), deref(second.Report.Server.Standbys[0].ReplayLagSeconds))

		standby.Exec(t, "SELECT pg_wal_replay_resume()")
		waitReplayed(t, primary, standby)
		h.poll("replay lag back under 1MB", func(r statusRun) bool { return r.Code == int(status.OK) }, lag)
		h.wantAlerts()
	})

	t.Run("archive_command failing", func(t *testing.T) {
		h.t = t
		primary.Exec(t, "ALTER SYSTEM SET archive_command = '/bin/false'")
		primary.Exec(t, "SELECT pg_reload_conf()")
		// Writes go on while archiving fails, as they would in production.
		ctx, cancel := context.WithCancel(t.Context())
		load := primary.Command(ctx, nil, primary.PgbenchPath(t), "-n", "-c", "2", "-T", "300", "-R", "200", "postgres")
		if err := load.Start(); err != nil {
			t.Fatal(err)
		}
		stopLoad := func() { cancel(); load.Wait() }
		defer stopLoad()
		primary.Exec(t, "SELECT pg_switch_wal()")
		// The switched segment shows as lag at once; wait for the
		// archiver's failure itself.
		r := h.poll("archive_command failing shows", func(r statusRun) bool {
			return (r.Code == int(status.Warning) || r.Code == int(status.Critical)) && r.Report.Server.Archiver.Failing
		}, lag, "--max-archive-lag=0")
		if !strings.Contains(r.Report.Summary, "archive_command failing") || !r.Report.Server.Archiver.Failing {
			t.Errorf("summary does not say archiving fails: %s", r.Report.Summary)
		}
		failed, err := strconv.ParseInt(primary.QueryString(t, "SELECT failed_count FROM pg_stat_archiver"), 10, 64)
		if got := r.Report.Server.Archiver.FailedCount; err != nil || got < 1 || got > failed {
			t.Errorf("failed_count %d, pg_stat_archiver now says %d (%v)", got, failed, err)
		}
		if lagged := r.Report.Server.ArchiveLag; lagged == nil || lagged.Segments < 1 {
			t.Errorf("archive lag %+v with a switched segment unarchived", lagged)
		}
		h.wantAlerts(status.AlertArchiveCommandFailing, status.AlertArchiveLagHigh)

		stopLoad()
		primary.Exec(t, "ALTER SYSTEM RESET archive_command")
		primary.Exec(t, "SELECT pg_reload_conf()")
		switchAndWaitArchived(t, primary)
		h.poll("archiving recovers", func(r statusRun) bool { return r.Code == int(status.OK) }, lag, "--max-archive-lag=0")
		h.wantAlerts()
	})

	t.Run("store stopped", func(t *testing.T) {
		h.t = t
		stopStore()
		r := h.run(lag, "--timeout", "3s")
		if r.Code != int(status.Critical) || !strings.HasPrefix(r.Report.Summary, "WALNUT CRITICAL: store unreachable") || r.Report.Archive.Reachable {
			t.Errorf("store stopped:\n%s", r)
		}
		h.wantAlerts(status.AlertStoreUnreachable)
		// The server half is still there.
		if s := r.Report.Server; s == nil || s.Error != nil || len(s.Standbys) != 1 {
			t.Errorf("server half with the store stopped: %+v", s)
		}
	})
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// waitReplayReported waits until the primary has the standby's reply for
// what it replayed: pg_stat_replication shows a standby that has just
// connected as streaming before its first reply, with no replay position.
func waitReplayReported(t *testing.T, primary *testpg.Cluster, name string) {
	t.Helper()
	lsn := primary.QueryString(t, "SELECT pg_current_wal_lsn()::text")
	q := "SELECT coalesce(bool_or(replay_lsn >= '" + lsn + "'), false)::text FROM pg_stat_replication WHERE application_name = '" + name + "'"
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if primary.QueryString(t, q) == "true" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the primary has no reply from %s for replay up to %s", name, lsn)
}
