package status

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

const testSysID = "7301234567890123456"

var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func put(t testing.TB, s storage.Store, key string, size int) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(make([]byte, size)), int64(size)); err != nil {
		t.Fatal(err)
	}
}

func putIdentity(t testing.TB, s storage.Store) {
	t.Helper()
	id := archive.Identity{Format: archive.FormatVersion, SystemIdentifier: testSysID, PGVersion: 150000, WALSegmentSize: 16 << 20, Created: testNow.Add(-30 * 24 * time.Hour)}
	if _, err := archive.PutJSON(context.Background(), s, archive.IdentityKey, id); err != nil {
		t.Fatal(err)
	}
}

func putBackup(t testing.TB, s storage.Store, name string, finished time.Time, stored, expanded int64, permanent bool) {
	t.Helper()
	put(t, s, archive.PartitionKey(name, 1, ".zst"), int(stored))
	putSentinel(t, s, name, finished, stored, expanded, permanent)
}

// putSentinel writes a sentinel alone; its parts are the caller's.
func putSentinel(t testing.TB, s storage.Store, name string, finished time.Time, stored, expanded int64, permanent bool) {
	t.Helper()
	sn := archive.Sentinel{Format: archive.FormatVersion, Name: name, FinishTime: finished, StartTime: finished.Add(-time.Minute),
		StoredSize: stored, ExpandedSize: expanded, Permanent: permanent, SystemIdentifier: testSysID}
	if _, err := archive.PutJSON(context.Background(), s, archive.SentinelKey(name), sn); err != nil {
		t.Fatal(err)
	}
}

func walKey(name string) string { return archive.WALKey(name, "0123456789abcdef", ".zst") }

// testArchive holds three backups (one permanent, the newest 3 hours
// old), an unfinished one, segments on two timelines, a history file, a
// backup history file and a partial segment.
func testArchive(t testing.TB) *mem.Store {
	s := mem.New()
	putIdentity(t, s)
	putBackup(t, s, "base_000000010000000000000002_00000028", testNow.Add(-50*time.Hour), 1000, 5000, true)
	putBackup(t, s, "base_000000010000000000000004_00000028", testNow.Add(-27*time.Hour), 1100, 5100, false)
	putBackup(t, s, "base_000000020000000000000007_00000028", testNow.Add(-3*time.Hour), 1200, 5200, false)
	put(t, s, archive.PartitionKey("base_000000020000000000000009_00000028", 1, ".zst"), 77) // running
	for _, n := range []string{"000000010000000000000002", "000000010000000000000003", "000000010000000000000004",
		"000000010000000000000005", "000000010000000000000006.partial", "00000002.history",
		"000000020000000000000006", "000000020000000000000007", "000000020000000000000007.00000028.backup", "000000020000000000000008"} {
		put(t, s, walKey(n), 100)
	}
	return s
}

func fixedNow() time.Time { return testNow }

func defaultLimits() Limits {
	return Limits{
		BackupAge:         Limit{Crit: 26 * 3600, HasCrit: true},
		ArchiveFailureAge: Limit{Warn: 0, Crit: 300, HasWarn: true, HasCrit: true},
	}
}

func TestArchiveFigures(t *testing.T) {
	s := testArchive(t)
	f := storagetest.NewFaulty(s, storagetest.Fault{Op: storagetest.OpPut}, storagetest.Fault{Op: storagetest.OpDelete})
	r, err := Run(t.Context(), Options{Store: f, Archive: "mem://x", Limits: defaultLimits(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if f.Calls(storagetest.OpPut) != 0 || f.Calls(storagetest.OpDelete) != 0 {
		t.Errorf("status wrote to the archive: %d puts, %d deletes", f.Calls(storagetest.OpPut), f.Calls(storagetest.OpDelete))
	}
	if r.State != OK || !r.Archive.Reachable || r.Archive.Error != nil || r.Server != nil {
		t.Fatalf("state %s, archive %+v, server %v", r.State, r.Archive, r.Server)
	}
	if !strings.HasPrefix(r.Summary, "WALNUT OK: newest backup base_000000020000000000000007_00000028 finished 3h0m0s ago") ||
		!strings.HasSuffix(r.Summary, "(archive only: no server checked)") {
		t.Errorf("summary %q", r.Summary)
	}
	a := r.Archive
	b := a.Backups
	if b.Count != 3 || b.Permanent != 1 || b.StoredBytes != 3300 || b.ExpandedBytes != 15300 {
		t.Errorf("backups %+v", b)
	}
	if n := b.Newest; n == nil || n.Name != "base_000000020000000000000007_00000028" || n.AgeSeconds != 3*3600 || n.StoredBytes != 1200 || n.ExpandedBytes != 5200 {
		t.Errorf("newest backup %+v", b.Newest)
	}
	if a.WAL.Objects != 10 || a.WAL.Segments != 7 || a.WALBytes != 1000 {
		t.Errorf("WAL %+v, %d bytes", a.WAL, a.WALBytes)
	}
	if a.WAL.NewestSegment == nil || *a.WAL.NewestSegment != "000000020000000000000008" || a.WAL.NewestSegmentAgeSeconds == nil {
		t.Errorf("newest segment %v", a.WAL.NewestSegment)
	}
	if a.SystemIdentifier == nil || *a.SystemIdentifier != testSysID {
		t.Errorf("system identifier %v", a.SystemIdentifier)
	}
	// Parts of every backup (the running one too) and sentinels.
	if a.BackupsBytes < 3300+77 || a.OtherBytes == 0 || a.TotalBytes != a.WALBytes+a.BackupsBytes+a.OtherBytes {
		t.Errorf("sizes: total %d, WAL %d, backups %d, other %d", a.TotalBytes, a.WALBytes, a.BackupsBytes, a.OtherBytes)
	}
	if a.Objects != 10+4+3+1 {
		t.Errorf("%d objects", a.Objects)
	}
}

func TestBackupAge(t *testing.T) {
	s := testArchive(t)
	for _, c := range []struct {
		limit Limit
		want  State
	}{
		{Limit{Crit: 26 * 3600, HasCrit: true}, OK},
		{Limit{Crit: 3 * 3600, HasCrit: true}, OK}, // equal is still fine
		{Limit{Crit: 2 * 3600, HasCrit: true}, Critical},
		{Limit{Warn: 2 * 3600, Crit: 4 * 3600, HasWarn: true, HasCrit: true}, Warning},
		{Off, OK},
	} {
		r, err := Run(t.Context(), Options{Store: s, Archive: "mem://x", Limits: Limits{BackupAge: c.limit}, Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		wantAlerts := []string{}
		if c.want != OK {
			wantAlerts = []string{AlertBackupTooOld}
		}
		if r.State != c.want || !slices.Equal(r.Alerts, wantAlerts) {
			t.Errorf("limit %+v: %s, alerts %v; want %s", c.limit, r.Summary, r.Alerts, c.want)
		}
	}
}

// No backup at all is critical, and so is a prefix without walnut.json:
// never "no backups, OK".
func TestNoBackupsNoArchive(t *testing.T) {
	s := mem.New()
	putIdentity(t, s)
	put(t, s, walKey("000000010000000000000001"), 10)
	r, err := Run(t.Context(), Options{Store: s, Archive: "mem://x", Limits: defaultLimits(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != Critical || !slices.Equal(r.Alerts, []string{AlertBackupTooOld}) || !strings.Contains(r.Summary, "no backups") {
		t.Errorf("no backups: %s, alerts %v", r.Summary, r.Alerts)
	}

	empty := mem.New()
	put(t, empty, walKey("000000010000000000000001"), 10)
	put(t, empty, "backups/base_000000010000000000000001_00000028.json", 10)
	r, err = Run(t.Context(), Options{Store: empty, Archive: "mem://empty", Limits: defaultLimits(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != Critical || !slices.Equal(r.Alerts, []string{AlertArchiveMissing}) || !r.Archive.Reachable ||
		!strings.HasPrefix(r.Summary, "WALNUT CRITICAL: no walnut.json under mem://empty") {
		t.Errorf("no walnut.json: %s, alerts %v", r.Summary, r.Alerts)
	}
	if strings.Contains(r.Summary, "not read") {
		t.Errorf("summary repeats what follows from the missing archive: %s", r.Summary)
	}
}

func TestStoreUnreachable(t *testing.T) {
	for _, op := range []storagetest.Op{storagetest.OpGet, storagetest.OpList} {
		f := storagetest.NewFaulty(testArchive(t), storagetest.Fault{Op: op})
		r, err := Run(t.Context(), Options{Store: f, Archive: "mem://x", Limits: defaultLimits(), Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		if r.State != Critical || !slices.Equal(r.Alerts, []string{AlertStoreUnreachable}) || r.Archive.Reachable ||
			!strings.HasPrefix(r.Summary, "WALNUT CRITICAL: store unreachable: ") {
			t.Errorf("%s failing: %s, alerts %v", op, r.Summary, r.Alerts)
		}
	}
	// A store that does not answer in time is unreachable, not waited for.
	r, _ := Run(t.Context(), Options{Store: hangingStore{testArchive(t)}, Archive: "mem://x", Limits: defaultLimits(), Now: fixedNow, Timeout: 50 * time.Millisecond})
	if r.State != Critical || !errorsMention(r.Archive.Error, "no answer for 50ms") {
		t.Errorf("hanging store: %s", r.Summary)
	}
	// One that keeps answering, slowly, is given the time its listing
	// takes: here nearly twice the timeout, which is ten pauses long so
	// that a busy machine's scheduling does not read as silence.
	r, _ = Run(t.Context(), Options{Store: slowStore{testArchive(t), 40 * time.Millisecond}, Archive: "mem://x", Limits: defaultLimits(), Now: fixedNow, Timeout: 400 * time.Millisecond})
	if r.State != OK || r.Archive.Objects != 18 {
		t.Errorf("slow store: %s", r.Summary)
	}
}

// slowStore hands over each listed object after a pause, as a store
// paging through a large listing does.
type slowStore struct {
	storage.Store
	pause time.Duration
}

func (s slowStore) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	return s.Store.List(ctx, prefix, func(oi storage.ObjectInfo) error {
		select {
		case <-time.After(s.pause):
		case <-ctx.Done():
			return ctx.Err()
		}
		return fn(oi)
	})
}

func errorsMention(e *string, s string) bool { return e != nil && strings.Contains(*e, s) }

// hangingStore answers nothing until its context ends, as a store behind
// a dropped network does.
type hangingStore struct{ storage.Store }

func (h hangingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestParseLimit(t *testing.T) {
	num := func(s string) (float64, error) {
		var f float64
		err := json.Unmarshal([]byte(s), &f)
		return f, err
	}
	for _, c := range []struct {
		in   string
		want Limit
		bad  bool
	}{
		{"", Off, false},
		{"off", Off, false},
		{"OFF", Off, false},
		{"5", Limit{Crit: 5, HasCrit: true}, false},
		{"0", Limit{Crit: 0, HasCrit: true}, false},
		{"3,5", Limit{Warn: 3, Crit: 5, HasWarn: true, HasCrit: true}, false},
		{" 3 , 5 ", Limit{Warn: 3, Crit: 5, HasWarn: true, HasCrit: true}, false},
		{"5,5", Limit{Warn: 5, Crit: 5, HasWarn: true, HasCrit: true}, false},
		{"6,5", Off, true},
		{"x", Off, true},
		{"3,", Off, true},
		{",3", Off, true},
		{"1,2,3", Off, true},
	} {
		got, err := ParseLimit(c.in, num)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v, error %v", c.in, got, err, c.want, c.bad)
		}
	}
	l := Limit{Warn: 3, Crit: 5, HasWarn: true, HasCrit: true}
	for v, want := range map[float64]State{0: OK, 3: OK, 3.5: Warning, 5: Warning, 5.1: Critical} {
		if got := l.State(v); got != want {
			t.Errorf("State(%g) = %s, want %s", v, got, want)
		}
	}
}

func TestWorst(t *testing.T) {
	for _, c := range []struct{ a, b, want State }{
		{OK, OK, OK}, {OK, Unknown, Unknown}, {Unknown, Warning, Warning}, {Warning, Unknown, Warning},
		{Critical, Unknown, Critical}, {Warning, Critical, Critical}, {Unknown, OK, Unknown},
	} {
		if got := Worst(c.a, c.b); got != c.want {
			t.Errorf("Worst(%s, %s) = %s, want %s", c.a, c.b, got, c.want)
		}
	}
}

func TestAlertFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "alerts")
	s := testArchive(t)
	run := func(limits Limits, store storage.Store) *Report {
		t.Helper()
		r, err := Run(t.Context(), Options{Store: store, Archive: "mem://x", Limits: limits, AlertDir: dir, Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	files := func() []string {
		t.Helper()
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	run(Limits{BackupAge: Limit{Crit: 3600, HasCrit: true}}, s)
	if got := files(); !slices.Equal(got, []string{AlertBackupTooOld}) {
		t.Fatalf("after a too old backup: %v", got)
	}
	fi, err := os.Stat(filepath.Join(dir, AlertBackupTooOld))
	if err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o644 {
		t.Fatalf("alert file: %v, %v", fi, err)
	}
	// Another tool's files and unknown names stay.
	for _, n := range []string{"upload_error", "replication_delay_warning"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// An unreachable store raises its alert and leaves backup_too_old,
	// which it could not judge, as it was.
	run(Limits{BackupAge: Limit{Crit: 3600, HasCrit: true}}, storagetest.NewFaulty(s, storagetest.Fault{Op: storagetest.OpGet}))
	if got := files(); !slices.Equal(got, []string{AlertBackupTooOld, "replication_delay_warning", AlertStoreUnreachable, "upload_error"}) {
		t.Fatalf("store unreachable: %v", got)
	}
	run(defaultLimits(), s)
	if got := files(); !slices.Equal(got, []string{"replication_delay_warning", "upload_error"}) {
		t.Fatalf("all clear: %v", got)
	}
}

func TestJSONFieldsStable(t *testing.T) {
	r, err := Run(t.Context(), Options{Store: testArchive(t), Archive: "mem://x", Limits: defaultLimits(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"state", "summary", "checked_at", "duration_seconds", "archive", "server", "checks", "alerts"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, b)
		}
	}
	if m["state"] != "OK" || m["server"] != nil {
		t.Errorf("state %v, server %v", m["state"], m["server"])
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.State != OK {
		t.Errorf("read back: %v, %v", back.State, err)
	}
}

// The README documents every field --json prints, nested ones included,
// and scripts read them: a renamed or dropped field must fail here. Every
// pointer and slice of a Report is filled so that each field is printed.
func TestJSONFieldPathsStable(t *testing.T) {
	var r Report
	fillAll(reflect.ValueOf(&r).Elem())
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var got []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(prefix+"."+k, x)
			}
		case []any:
			for _, x := range v {
				walk(prefix+"[]", x)
			}
		default:
			got = append(got, strings.TrimPrefix(prefix, "."))
		}
	}
	walk("", v)
	slices.Sort(got)
	want := []string{
		"alerts[]",
		"archive.backups.count", "archive.backups.expanded_bytes",
		"archive.backups.newest.age_seconds", "archive.backups.newest.expanded_bytes", "archive.backups.newest.finish_time",
		"archive.backups.newest.name", "archive.backups.newest.permanent", "archive.backups.newest.stored_bytes",
		"archive.backups.permanent", "archive.backups.stored_bytes",
		"archive.backups_bytes", "archive.error", "archive.objects", "archive.other_bytes", "archive.prefix",
		"archive.reachable", "archive.system_identifier", "archive.total_bytes",
		"archive.wal.newest_segment", "archive.wal.newest_segment_age_seconds", "archive.wal.newest_segment_stored_at",
		"archive.wal.objects", "archive.wal.segments", "archive.wal_bytes",
		"checked_at",
		"checks[].alert", "checks[].critical", "checks[].message", "checks[].name", "checks[].state",
		"checks[].unit", "checks[].value", "checks[].warning",
		"duration_seconds",
		"server.archive_lag.bytes", "server.archive_lag.segments", "server.archive_mode",
		"server.archiver.archived_count", "server.archiver.failed_count", "server.archiver.failing",
		"server.archiver.failing_seconds", "server.archiver.last_archived_in_archive",
		"server.archiver.last_archived_time", "server.archiver.last_archived_wal",
		"server.archiver.last_failed_time", "server.archiver.last_failed_wal",
		"server.archiver.seconds_since_last_archived", "server.archiver.stats_reset",
		"server.connected", "server.current_lsn", "server.data_directory", "server.error", "server.in_recovery",
		"server.replication_slots[].active", "server.replication_slots[].name", "server.replication_slots[].restart_lsn",
		"server.replication_slots[].retained_bytes", "server.replication_slots[].type", "server.replication_slots[].wal_status",
		"server.standbys[].application_name", "server.standbys[].client_addr", "server.standbys[].flush_lag_bytes",
		"server.standbys[].flush_lag_seconds", "server.standbys[].flush_lsn", "server.standbys[].name",
		"server.standbys[].pid", "server.standbys[].replay_lag_bytes", "server.standbys[].replay_lag_seconds",
		"server.standbys[].replay_lsn", "server.standbys[].sent_lsn", "server.standbys[].state",
		"server.standbys[].sync_state", "server.standbys[].write_lag_bytes", "server.standbys[].write_lag_seconds",
		"server.standbys[].write_lsn",
		"server.system_identifier", "server.version_num", "server.wal_segment_size",
		"state", "summary",
	}
	if !slices.Equal(got, want) {
		for _, p := range got {
			if !slices.Contains(want, p) {
				t.Errorf("--json prints %s, which is not in the documented list", p)
			}
		}
		for _, p := range want {
			if !slices.Contains(got, p) {
				t.Errorf("--json no longer prints %s", p)
			}
		}
	}
}

// fillAll gives every nil pointer a zero value and every empty slice one
// element, through the whole value.
func fillAll(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fillAll(v.Elem())
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		}
		for i := range v.Len() {
			fillAll(v.Index(i))
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillAll(v.Field(i))
			}
		}
	}
}
