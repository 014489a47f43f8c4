package e2e

import (
	"encoding/json"
	"fmt"
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
	h.checkMetrics(&sr.Report)
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
// holds its values against the JSON of the same run.
func (h *statusHarness) checkMetrics(r *status.Report) {
	t := h.t
	t.Helper()
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
	get := func(name string, labels ...string) (float64, bool) {
		fam := fams[name]
		if fam == nil {
			return 0, false
		}
		for _, m := range fam.Metric {
			ok := true
			have := map[string]string{}
			for _, l := range m.Label {
				have[l.GetName()] = l.GetValue()
			}
			if have["archive"] != r.Archive.Prefix {
				t.Errorf("%s: archive label %q, want %q", name, have["archive"], r.Archive.Prefix)
			}
			for i := 0; i+1 < len(labels); i += 2 {
				ok = ok && have[labels[i]] == labels[i+1]
			}
			if ok {
				if fam.GetType() == dto.MetricType_COUNTER {
					return m.Counter.GetValue(), true
				}
				return m.Gauge.GetValue(), true
			}
		}
		return 0, false
	}
	want := func(v float64, name string, labels ...string) {
		t.Helper()
		got, ok := get(name, labels...)
		if !ok || got != v {
			t.Errorf("metric %s%q = %v (present %v), JSON says %v", name, labels, got, ok, v)
		}
	}
	want(float64(r.State), "walnut_status_state")
	for _, c := range r.Checks {
		want(float64(c.State), "walnut_status_check_state", "check", c.Name)
	}
	for _, al := range r.Alerts {
		want(1, "walnut_status_alert", "alert", al)
	}
	a := r.Archive
	if a.Error == nil {
		want(float64(a.Objects), "walnut_archive_objects")
		want(float64(a.WALBytes), "walnut_archive_size_bytes", "kind", "wal")
		want(float64(a.BackupsBytes), "walnut_archive_size_bytes", "kind", "backups")
		want(float64(a.Backups.Count), "walnut_backups")
		want(float64(a.Backups.StoredBytes), "walnut_backups_stored_bytes")
		if n := a.Backups.Newest; n != nil {
			want(n.AgeSeconds, "walnut_newest_backup_age_seconds")
			want(float64(n.StoredBytes), "walnut_newest_backup_stored_bytes")
		}
		if a.WAL.NewestSegmentAgeSeconds != nil {
			want(*a.WAL.NewestSegmentAgeSeconds, "walnut_wal_newest_segment_age_seconds")
		}
	}
	s := r.Server
	if s == nil || s.Error != nil {
		return
	}
	want(float64(s.Archiver.ArchivedCount), "walnut_archiver_archived_total")
	want(float64(s.Archiver.FailedCount), "walnut_archiver_failed_total")
	if s.Archiver.FailingSeconds != nil {
		want(*s.Archiver.FailingSeconds, "walnut_archiver_failing_seconds")
	}
	if s.ArchiveLag != nil {
		want(float64(s.ArchiveLag.Segments), "walnut_archive_lag_segments")
		want(float64(s.ArchiveLag.Bytes), "walnut_archive_lag_bytes")
	}
	for _, st := range s.Standbys {
		if st.ReplayLagBytes != nil {
			want(float64(*st.ReplayLagBytes), "walnut_replication_lag_bytes", "standby", st.Name, "stage", "replay")
		}
		if st.ReplayLagSeconds != nil {
			want(*st.ReplayLagSeconds, "walnut_replication_lag_seconds", "standby", st.Name, "stage", "replay")
		}
	}
	for _, sl := range s.ReplicationSlots {
		if sl.RetainedBytes != nil {
			want(float64(*sl.RetainedBytes), "walnut_replication_slot_retained_bytes", "slot", sl.Name)
		}
	}
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
		primary.Exec(t, "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())")
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
