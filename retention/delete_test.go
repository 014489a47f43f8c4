package retention

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

// materialize stores the fake archive: sentinels as real JSON, every other
// key with a few bytes.
func (a *fakeArchive) materialize(t *testing.T) *mem.Store {
	t.Helper()
	ctx := t.Context()
	s := mem.New()
	sentinels := map[string]*archive.Sentinel{}
	for _, sn := range a.inv.sentinels {
		sentinels[archive.SentinelKey(sn.Name)] = sn
	}
	for _, o := range append(append([]storage.ObjectInfo(nil), a.inv.backups...), a.inv.wal...) {
		if sn := sentinels[o.Key]; sn != nil {
			if _, err := archive.PutJSON(ctx, s, o.Key, sn); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := s.Put(ctx, o.Key, strings.NewReader(o.Key), int64(len(o.Key))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := archive.PutJSON(ctx, s, archive.IdentityKey, archive.Identity{Format: archive.FormatVersion, SystemIdentifier: "7"}); err != nil {
		t.Fatal(err)
	}
	return s
}

// retentionFixture: four backups on timeline 1, the second permanent, a
// promotion to timeline 2 with a fifth backup, WAL throughout, and an
// unfinished backup of a backup-push that is still running.
func retentionFixture() (*fakeArchive, []string) {
	a := newFake()
	names := []string{
		a.backup(1, 2, 2, t0.Add(1*time.Hour), false),
		a.backup(1, 4, 5, t0.Add(2*time.Hour), true),
		a.backup(1, 7, 7, t0.Add(3*time.Hour), false),
		a.backup(1, 9, 9, t0.Add(4*time.Hour), false),
		a.backup(2, 13, 13, t0.Add(5*time.Hour), false),
	}
	a.wal(1, 1, 14)
	a.walFile(walSeg(1, 4) + ".00000028.backup")
	a.walFile(walSeg(1, 11) + ".partial")
	a.walFile("00000002.history")
	a.wal(2, 11, 16)
	a.unfinished("base_"+walSeg(2, 15)+"_00000028", t0, false)
	return a, names
}

func allKeys(t *testing.T, s storage.Store) []string {
	t.Helper()
	return fixture.Keys(t, s, "")
}

type objectState struct {
	Key  string
	Size int64
}

func snapshot(t *testing.T, s storage.Store) []objectState {
	t.Helper()
	var out []objectState
	if err := s.List(t.Context(), "", func(oi storage.ObjectInfo) error {
		out = append(out, objectState{oi.Key, oi.Size})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkConsistent fails if a listed backup misses any of its objects or
// any WAL file from its start to its stop segment.
func checkConsistent(t *testing.T, s storage.Store, a *fakeArchive) {
	t.Helper()
	ctx := t.Context()
	list, err := List(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range list {
		want := slices.Clone(a.backups[sn.Name])
		r, err := backupWAL(sn, testSegSize)
		if err != nil {
			t.Fatal(err)
		}
		for seg := r.first; seg <= r.last; seg++ {
			want = append(want, walObjKey(walSeg(r.tli, seg)))
		}
		for _, k := range want {
			if _, err := s.Stat(ctx, k); err != nil {
				t.Fatalf("listed backup %s lacks %s: %v", sn.Name, k, err)
			}
		}
	}
}

func TestDeleteDryRunChangesNothing(t *testing.T) {
	a, _ := retentionFixture()
	s := a.materialize(t)
	before := snapshot(t, s)
	for _, p := range []Policy{{Mode: Retain, Retain: 1}, {Mode: Garbage}, {Mode: Everything}} {
		p.Grace = time.Hour
		plan, err := Delete(t.Context(), Options{Store: s, Policy: p, Now: time.Now().Add(48 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if plan.Objects() == 0 {
			t.Fatalf("%s: dry run plans nothing", p.Mode)
		}
	}
	if after := snapshot(t, s); !slices.Equal(before, after) {
		t.Fatalf("dry run changed the archive:\nbefore %v\nafter  %v", before, after)
	}
}

func TestDeleteRetainThenNothingToDo(t *testing.T) {
	a, names := retentionFixture()
	s := a.materialize(t)
	ctx := t.Context()
	pol := Policy{Mode: Retain, Retain: 2, Grace: DefaultGrace}
	want := a.materializedAfter(t, pol, time.Now())
	plan, err := Delete(ctx, Options{Store: s, Policy: pol, Confirm: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range plan.Backups {
		if !b.Deleted {
			t.Errorf("%s not marked deleted", b.Name)
		}
	}
	if got := allKeys(t, s); !slices.Equal(got, want) {
		t.Fatalf("after retain 2:\nnot expected %v\nmissing %v", diff(got, want), diff(want, got))
	}
	list, err := List(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, sn := range list {
		listed = append(listed, sn.Name)
	}
	if !slices.Equal(listed, []string{names[1], names[3], names[4]}) {
		t.Fatalf("listed after retain 2: %v", listed)
	}
	checkConsistent(t, s, a)
	again, err := Delete(ctx, Options{Store: s, Policy: pol, Confirm: true})
	if err != nil || again.Objects() != 0 {
		t.Fatalf("second retain 2 plans %d objects (err %v)", again.Objects(), err)
	}
}

// materializedAfter is every key left once the plan for p is carried out.
func (a *fakeArchive) materializedAfter(t *testing.T, p Policy, now time.Time) []string {
	t.Helper()
	s := a.materialize(t)
	inv, err := takeInventory(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := planDelete(p, inv, now)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, k := range allKeys(t, s) {
		if !slices.Contains(doomed(pl), k) {
			left = append(left, k)
		}
	}
	return left
}

// A delete that stops after any number of store calls leaves every listed
// backup whole, and running it again, at once, finishes the job.
func TestDeleteInterruptedAnywhereThenRerun(t *testing.T) {
	a, _ := retentionFixture()
	pol := Policy{Mode: Retain, Retain: 1, Grace: DefaultGrace}
	now := time.Now()
	want := a.materializedAfter(t, pol, now)

	// How many calls a clean run makes.
	counter := storagetest.NewFaulty(a.materialize(t))
	if _, err := Delete(t.Context(), Options{Store: counter, Policy: pol, Confirm: true, Now: now}); err != nil {
		t.Fatal(err)
	}
	for _, op := range []storagetest.Op{storagetest.OpDelete, storagetest.OpPut, storagetest.OpGet} {
		n := counter.Calls(op)
		if n == 0 {
			t.Fatalf("a clean run makes no %s calls", op)
		}
		for k := range n {
			f := storagetest.NewFaulty(a.materialize(t), storagetest.Fault{Op: op, After: k})
			_, err := Delete(t.Context(), Options{Store: f, Policy: pol, Confirm: true, Now: now})
			if !errors.Is(err, storagetest.ErrInjected) {
				t.Fatalf("%s fault after %d: %v", op, k, err)
			}
			f.Clear()
			checkConsistent(t, f, a)
			if _, err := Delete(t.Context(), Options{Store: f, Policy: pol, Confirm: true, Now: now}); err != nil {
				t.Fatalf("%s fault after %d, rerun: %v", op, k, err)
			}
			if got := allKeys(t, f); !slices.Equal(got, want) {
				t.Fatalf("%s fault after %d, after the rerun:\nnot expected %v\nmissing %v", op, k, diff(got, want), diff(want, got))
			}
		}
	}
}

func TestDeleteEverythingLeavesAFreshPrefix(t *testing.T) {
	a, _ := retentionFixture()
	s := a.materialize(t)
	ctx := t.Context()
	if _, err := Delete(ctx, Options{Store: s, Policy: Policy{Mode: Everything}, Confirm: true}); err != nil {
		t.Fatal(err)
	}
	if left := allKeys(t, s); len(left) != 0 {
		t.Fatalf("delete everything left %v", left)
	}
	// Another cluster can start an archive here.
	if err := archive.CheckIdentity(ctx, s, 99, 15, testSegSize); err != nil {
		t.Fatalf("new cluster refused after delete everything: %v", err)
	}
}

func TestDeleteGarbageAgesUnfinishedBackups(t *testing.T) {
	a, _ := retentionFixture()
	s := a.materialize(t)
	ctx := t.Context()
	running := "base_" + walSeg(2, 15) + "_00000028"
	pol := Policy{Mode: Garbage, Grace: time.Hour}
	plan, err := Delete(ctx, Options{Store: s, Policy: pol, Confirm: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Unfinished) != 0 || !slices.Equal(plan.Kept.Unfinished, []string{running}) {
		t.Fatalf("young unfinished backup: deleted %v, kept %v", plan.Unfinished, plan.Kept.Unfinished)
	}
	if k := fixture.Keys(t, s, archive.BackupPrefix(running)); len(k) != 2 {
		t.Fatalf("young unfinished backup's parts: %v", k)
	}
	plan, err = Delete(ctx, Options{Store: s, Policy: pol, Confirm: true, Now: time.Now().Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Unfinished) != 1 || plan.Unfinished[0].Name != running || !plan.Unfinished[0].Deleted {
		t.Fatalf("old unfinished backup: %+v", plan.Unfinished)
	}
	if k := fixture.Keys(t, s, archive.BackupPrefix(running)); len(k) != 0 {
		t.Fatalf("old unfinished backup left %v", k)
	}
}

func TestMark(t *testing.T) {
	a, names := retentionFixture()
	s := a.materialize(t)
	ctx := t.Context()
	// A field this walnut does not know survives the rewrite.
	key := archive.SentinelKey(names[4])
	raw := fixture.Object(t, s, key)
	raw = bytes.Replace(raw, []byte("{"), []byte(`{"from_the_future": [1, 2],`), 1)
	if err := s.Put(ctx, key, bytes.NewReader(raw), int64(len(raw))); err != nil {
		t.Fatal(err)
	}

	name, changed, err := Mark(ctx, MarkOptions{Store: s, Name: "LATEST", Permanent: true})
	if err != nil || name != names[4] || !changed {
		t.Fatalf("mark LATEST: %s %v %v", name, changed, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(fixture.Object(t, s, key), &fields); err != nil {
		t.Fatal(err)
	}
	var future bytes.Buffer
	json.Compact(&future, fields["from_the_future"])
	if string(fields["permanent"]) != "true" || future.String() != "[1,2]" {
		t.Fatalf("rewritten sentinel: permanent %s, unknown field %s", fields["permanent"], fields["from_the_future"])
	}
	sn, err := archive.ReadSentinel(ctx, s, names[4])
	if err != nil || !sn.Permanent || sn.FinishTime != t0.Add(5*time.Hour) {
		t.Fatalf("sentinel after mark: %+v %v", sn, err)
	}
	if _, changed, err := Mark(ctx, MarkOptions{Store: s, Name: names[4], Permanent: true}); changed || err != nil {
		t.Fatalf("marking again: changed %v, %v", changed, err)
	}
	if _, changed, err := Mark(ctx, MarkOptions{Store: s, Name: names[1], Permanent: false}); !changed || err != nil {
		t.Fatalf("impermanent: changed %v, %v", changed, err)
	}
	if sn, _ := archive.ReadSentinel(ctx, s, names[1]); sn.Permanent {
		t.Fatal("still permanent after --impermanent")
	}
	if _, _, err := Mark(ctx, MarkOptions{Store: s, Name: "base_000000090000000000000001_00000028", Permanent: true}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("mark of an unknown backup: %v", err)
	}
	if _, _, err := Mark(ctx, MarkOptions{Store: s, Name: "../walnut", Permanent: true}); err == nil {
		t.Fatal("mark of a path accepted")
	}
}

// backup-mark between the plan and the delete wins: the backup stays.
func TestDeleteSparesBackupMarkedAfterThePlan(t *testing.T) {
	a, names := retentionFixture()
	s := a.materialize(t)
	ctx := t.Context()
	inv, err := takeInventory(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := planDelete(Policy{Mode: Retain, Retain: 1, Grace: DefaultGrace}, inv, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(backupNames(plan), names[0]) {
		t.Fatalf("plan spares %s", names[0])
	}
	if _, _, err := Mark(ctx, MarkOptions{Store: s, Name: names[0], Permanent: true}); err != nil {
		t.Fatal(err)
	}
	x := &executor{store: s, log: slog.New(slog.DiscardHandler)}
	if err := x.run(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.ReadSentinel(ctx, s, names[0]); err != nil {
		t.Fatalf("backup marked permanent after the plan was deleted: %v", err)
	}
	if len(plan.Notes) != 2 || !strings.Contains(plan.Notes[0], names[0]) {
		t.Errorf("notes %v", plan.Notes)
	}
	checkConsistent(t, s, a)
}

// A store error reaches the user as the store worded it: the operation and
// the key once ("list backups/: list backups/: ..." was issue 15's case).
func TestDeleteStoreErrorsNameTheKeyOnce(t *testing.T) {
	a, _ := retentionFixture()
	pol := Policy{Mode: Retain, Retain: 1, Grace: DefaultGrace}
	for _, op := range []storagetest.Op{storagetest.OpList, storagetest.OpStat, storagetest.OpDelete, storagetest.OpGet} {
		f := storagetest.NewFaulty(a.materialize(t), storagetest.Fault{Op: op})
		_, err := Delete(t.Context(), Options{Store: f, Policy: pol, Confirm: true, Now: time.Now()})
		if !errors.Is(err, storagetest.ErrInjected) {
			t.Fatalf("%s fault: %v", op, err)
		}
		msg := err.Error()
		named := regexp.MustCompile(op.String() + ` (backups/|wal/|walnut\.json)`)
		if n := len(named.FindAllString(msg, -1)); n != 1 {
			t.Errorf("%s fault: %q names the operation %d times, want once", op, msg, n)
		}
	}
}

// Only delete garbage takes temp files, and only those not written to
// for the grace period; they count in the plan's objects and bytes.
func TestPlanTemps(t *testing.T) {
	now := time.Now()
	inv := &inventory{temps: []storage.ObjectInfo{
		{Key: "wal/.tmp-1", Size: 100, ModTime: now.Add(-25 * time.Hour)},
		{Key: "backups/b/.tmp-2", Size: 7, ModTime: now.Add(-24 * time.Hour)},
		{Key: "wal/.tmp-3", Size: 5, ModTime: now.Add(-time.Minute)},
	}}
	plan, err := planDelete(Policy{Mode: Garbage, Grace: 24 * time.Hour}, inv, now)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, f := range plan.Temps {
		keys = append(keys, f.Key)
	}
	if !slices.Equal(keys, []string{"wal/.tmp-1", "backups/b/.tmp-2"}) || plan.Kept.TempFiles != 1 {
		t.Errorf("garbage plans temp files %q and keeps %d; want the two older than the grace period, and one kept", keys, plan.Kept.TempFiles)
	}
	if plan.Objects() != 2 || plan.Bytes() != 107 {
		t.Errorf("plan counts %d objects, %d bytes; want the temp files' 2 and 107", plan.Objects(), plan.Bytes())
	}
	for _, mode := range []Mode{Retain, Everything} {
		plan, err := planDelete(Policy{Mode: mode, Retain: 1, Grace: time.Hour}, inv, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Temps) != 0 {
			t.Errorf("delete %s plans temp files %v", mode, plan.Temps)
		}
	}
}

// delete reads the running markers of backups without a sentinel for the
// base a running delta needs; a marker it cannot read stops it.
func TestInventoryReadsRunningDeltas(t *testing.T) {
	s := mem.New()
	ctx := t.Context()
	delta, full := "base_000000010000000000000010_00000028", "base_000000010000000000000004_00000028"
	for name, r := range map[string]archive.Running{
		delta:                                    {Name: delta, DeltaBase: full},
		"base_000000010000000000000012_00000028": {Name: "base_000000010000000000000012_00000028"},
	} {
		if _, err := archive.PutJSON(ctx, s, archive.RunningKey(name), r); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := takeInventory(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.runningDeltas) != 1 || inv.runningDeltas[delta] != full {
		t.Fatalf("running deltas %v, want %s over %s", inv.runningDeltas, delta, full)
	}
	bad := archive.RunningKey("base_000000010000000000000014_00000028")
	if err := s.Put(ctx, bad, strings.NewReader("{not json"), 9); err != nil {
		t.Fatal(err)
	}
	if _, err := takeInventory(ctx, s); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("an unreadable marker: %v, want an error naming %s", err, bad)
	}
}
