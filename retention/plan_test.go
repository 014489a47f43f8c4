package retention

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

const testSegSize = 16 << 20

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func walSeg(tli uint32, n uint64) string { return pgcontrol.WALFileName(tli, n, testSegSize) }

// fakeArchive builds an inventory the way takeInventory would list it.
type fakeArchive struct {
	inv     inventory
	backups map[string][]string // name -> every key of the backup, sentinel included
}

func newFake() *fakeArchive { return &fakeArchive{backups: map[string][]string{}} }

func (a *fakeArchive) obj(key string, mod time.Time) storage.ObjectInfo {
	return storage.ObjectInfo{Key: key, Size: int64(len(key)), ModTime: mod}
}

// backup adds a committed backup on timeline tli from segment start to
// stop, finished at finish.
func (a *fakeArchive) backup(tli uint32, start, stop uint64, finish time.Time, permanent bool) string {
	startSeg := walSeg(tli, start)
	name := "base_" + startSeg + "_00000028"
	a.inv.sentinels = append(a.inv.sentinels, &archive.Sentinel{
		Name: name, Timeline: tli, Permanent: permanent, FinishTime: finish, StartTime: finish.Add(-time.Minute),
		StartSegment: startSeg, StopSegment: walSeg(tli, stop), WALSegmentSize: testSegSize,
	})
	keys := []string{archive.SentinelKey(name)}
	for _, part := range []string{"part_0001.tar.zst", "part_0002.tar.zst", "pg_control.tar.zst", "files.json.zst", "backup_manifest.zst"} {
		keys = append(keys, archive.BackupPrefix(name)+part)
	}
	for _, k := range keys {
		a.inv.backups = append(a.inv.backups, a.obj(k, finish))
	}
	a.backups[name] = keys
	return name
}

// unfinished adds parts of a backup without a sentinel, last written at mod.
func (a *fakeArchive) unfinished(name string, mod time.Time, tombstone bool) []string {
	keys := []string{archive.BackupPrefix(name) + "part_0001.tar.zst", archive.BackupPrefix(name) + "part_0002.tar.zst"}
	if tombstone {
		keys = append(keys, archive.TombstoneKey(name))
	}
	for _, k := range keys {
		a.inv.backups = append(a.inv.backups, a.obj(k, mod))
	}
	return keys
}

func walObjKey(name string) string { return archive.WALDir + name + "-0123456789abcdef.zst" }

// wal adds segments first..last of timeline tli and returns their keys.
func (a *fakeArchive) wal(tli uint32, first, last uint64) []string {
	var keys []string
	for s := first; s <= last; s++ {
		keys = append(keys, a.walFile(walSeg(tli, s)))
	}
	return keys
}

func (a *fakeArchive) walFile(name string) string {
	k := walObjKey(name)
	a.inv.wal = append(a.inv.wal, a.obj(k, t0))
	return k
}

// doomed lists every key a plan removes, sorted.
func doomed(p *Plan) []string {
	var keys []string
	for _, b := range p.Backups {
		keys = append(keys, b.sentinel)
		keys = append(keys, b.parts...)
	}
	for _, u := range p.Unfinished {
		keys = append(keys, u.parts...)
		if u.tombstone != "" {
			keys = append(keys, u.tombstone)
		}
	}
	for _, w := range p.WAL {
		keys = append(keys, w.keys...)
	}
	keys = append(keys, p.Other...)
	if p.Identity {
		keys = append(keys, archive.IdentityKey)
	}
	sort.Strings(keys)
	return keys
}

func union(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	sort.Strings(out)
	return out
}

func checkPlan(t *testing.T, p *Plan, want []string) {
	t.Helper()
	got := doomed(p)
	if want == nil {
		want = []string{}
	}
	if got == nil {
		got = []string{}
	}
	if !slices.Equal(got, want) {
		extra, missing := diff(got, want), diff(want, got)
		t.Fatalf("plan deletes the wrong keys\nnot expected: %v\nmissing: %v", extra, missing)
	}
	if p.Objects() != len(want) {
		t.Errorf("plan counts %d objects, deletes %d", p.Objects(), len(want))
	}
}

func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func plan(t *testing.T, a *fakeArchive, p Policy, now time.Time) *Plan {
	t.Helper()
	if p.Grace == 0 {
		p.Grace = DefaultGrace
	}
	pl, err := planDelete(p, &a.inv, now)
	if err != nil {
		t.Fatalf("planDelete(%+v): %v", p, err)
	}
	return pl
}

func backupNames(p *Plan) []string {
	var n []string
	for _, b := range p.Backups {
		n = append(n, b.Name)
	}
	return n
}

func TestPlanRetainKeepsNewestAndTheirWAL(t *testing.T) {
	a := newFake()
	b1 := a.backup(1, 2, 3, t0.Add(1*time.Hour), false)
	b2 := a.backup(1, 4, 5, t0.Add(2*time.Hour), false)
	b3 := a.backup(1, 6, 7, t0.Add(3*time.Hour), false)
	b4 := a.backup(1, 8, 9, t0.Add(4*time.Hour), false)
	old := a.wal(1, 1, 5)
	a.wal(1, 6, 12)
	a.walFile("00000002.history")
	p := plan(t, a, Policy{Mode: Retain, Retain: 2}, t0.Add(5*time.Hour))
	checkPlan(t, p, union(a.backups[b1], a.backups[b2], old))
	if !slices.Equal(p.Kept.Backups, []string{b3, b4}) || p.Kept.WALFrom != walSeg(1, 6) {
		t.Errorf("kept %v from %s", p.Kept.Backups, p.Kept.WALFrom)
	}
	if len(p.WAL) != 1 || p.WAL[0].First != walSeg(1, 1) || p.WAL[0].Last != walSeg(1, 5) || p.WAL[0].Objects != 5 {
		t.Errorf("WAL ranges %+v, want one of timeline 1 from 1 to 5", p.WAL)
	}
	// Keeping as many as there are deletes only WAL no backup needs.
	p = plan(t, a, Policy{Mode: Retain, Retain: 4}, t0.Add(5*time.Hour))
	checkPlan(t, p, []string{walObjKey(walSeg(1, 1))})
	if _, err := planDelete(Policy{Mode: Retain, Retain: 0}, &a.inv, t0); err == nil {
		t.Error("retain 0 accepted")
	}
}

// Names from different timelines, or taken by hosts with skewed clocks,
// do not sort in the order the backups finished; the finish time decides.
func TestPlanOrdersByFinishTimeNotName(t *testing.T) {
	a := newFake()
	// By name base_...02 < ...06 < ...0A, but base_...0A finished first.
	late := a.backup(1, 10, 10, t0.Add(1*time.Hour), false)
	mid := a.backup(1, 2, 2, t0.Add(2*time.Hour), false)
	newest := a.backup(1, 6, 6, t0.Add(3*time.Hour), false)
	a.wal(1, 1, 12)
	// Listed by name, as a store lists them.
	sort.Slice(a.inv.sentinels, func(i, j int) bool { return a.inv.sentinels[i].Name < a.inv.sentinels[j].Name })
	p := plan(t, a, Policy{Mode: Retain, Retain: 2}, t0.Add(4*time.Hour))
	if !slices.Equal(backupNames(p), []string{late}) || !slices.Equal(p.Kept.Backups, []string{mid, newest}) {
		t.Fatalf("deletes %v keeps %v; want %s deleted", backupNames(p), p.Kept.Backups, late)
	}
	// The oldest kept by finish time starts at segment 2: WAL from 2 on stays.
	checkPlan(t, p, union(a.backups[late], []string{walObjKey(walSeg(1, 1))}))

	p = plan(t, a, Policy{Mode: Before, Name: newest}, t0.Add(4*time.Hour))
	if !slices.Equal(backupNames(p), []string{late, mid}) {
		t.Fatalf("before %s deletes %v", newest, backupNames(p))
	}
	checkPlan(t, p, union(a.backups[late], a.backups[mid], a.wal(1, 1, 5)))
}

func TestPlanPermanentInTheMiddle(t *testing.T) {
	a := newFake()
	b1 := a.backup(1, 2, 2, t0.Add(1*time.Hour), false)
	perm := a.backup(1, 4, 5, t0.Add(2*time.Hour), true)
	b3 := a.backup(1, 7, 7, t0.Add(3*time.Hour), false)
	b4 := a.backup(1, 9, 9, t0.Add(4*time.Hour), false)
	a.wal(1, 1, 12)
	a.walFile(walSeg(1, 4) + ".00000028.backup")
	a.walFile(walSeg(1, 7) + ".00000028.backup")
	for _, pol := range []Policy{{Mode: Retain, Retain: 1}, {Mode: Before, Name: "LATEST"}, {Mode: Before, Name: b4}} {
		p := plan(t, a, pol, t0.Add(5*time.Hour))
		// Segments 4 and 5 and the permanent backup's .backup file stay:
		// enough to restore it to its end point. What lies between it and
		// the retained backup does not.
		want := union(a.backups[b1], a.backups[b3],
			[]string{walObjKey(walSeg(1, 1)), walObjKey(walSeg(1, 2)), walObjKey(walSeg(1, 3))},
			[]string{walObjKey(walSeg(1, 6)), walObjKey(walSeg(1, 7)), walObjKey(walSeg(1, 7) + ".00000028.backup"), walObjKey(walSeg(1, 8))})
		checkPlan(t, p, want)
		if !slices.Equal(p.Kept.Backups, []string{perm, b4}) || !slices.Equal(p.Kept.Permanent, []string{perm}) {
			t.Errorf("%+v: kept %v, permanent %v", pol, p.Kept.Backups, p.Kept.Permanent)
		}
		if len(p.WAL) != 2 || p.WAL[0].Last != walSeg(1, 3) || p.WAL[1].First != walSeg(1, 6) || p.WAL[1].Last != walSeg(1, 8) {
			t.Errorf("%+v: WAL ranges %+v, want 1..3 and 6..8 split by the permanent backup's", pol, p.WAL)
		}
	}
	// A permanent backup among the retained ones counts like any other:
	// it is kept for point-in-time recovery, WAL after it included.
	a = newFake()
	a.backup(1, 2, 2, t0.Add(1*time.Hour), false)
	a.backup(1, 4, 4, t0.Add(2*time.Hour), true)
	a.backup(1, 7, 7, t0.Add(3*time.Hour), false)
	a.wal(1, 1, 9)
	p := plan(t, a, Policy{Mode: Retain, Retain: 2}, t0.Add(5*time.Hour))
	if p.Kept.WALFrom != walSeg(1, 4) || len(p.WAL) != 1 || p.WAL[0].Last != walSeg(1, 3) {
		t.Errorf("retained permanent backup: WAL from %s, ranges %+v", p.Kept.WALFrom, p.WAL)
	}
	// Only delete everything removes a permanent backup.
	p = plan(t, a, Policy{Mode: Everything}, t0.Add(5*time.Hour))
	if len(p.Backups) != 3 {
		t.Errorf("everything deletes %v", backupNames(p))
	}
}

// Timeline 1 ran to segment 12; a restore promoted at segment 8 to
// timeline 2, which now runs to 15 and has a backup at 10; another restore
// of an old backup promoted at segment 5 to timeline 3 and took the newest
// backup, at 6.
func TestPlanTimelines(t *testing.T) {
	a := newFake()
	old := a.backup(1, 2, 2, t0.Add(1*time.Hour), false)
	tl1 := a.backup(1, 4, 4, t0.Add(2*time.Hour), false)
	tl2 := a.backup(2, 10, 10, t0.Add(3*time.Hour), false)
	a.wal(1, 1, 12)
	a.walFile(walSeg(1, 8) + ".partial")
	a.walFile("00000002.history")
	a.wal(2, 8, 15)
	now := t0.Add(10 * time.Hour)

	p := plan(t, a, Policy{Mode: Retain, Retain: 1}, now)
	// From segment 10 on everything stays, on both timelines; the history
	// file stays; timeline 1's .partial at 8 goes with what precedes 10.
	checkPlan(t, p, union(a.backups[old], a.backups[tl1],
		keysOf(1, 1, 9), []string{walObjKey(walSeg(1, 8) + ".partial")}, keysOf(2, 8, 9)))
	if len(p.WAL) != 2 || p.WAL[0].Timeline != 1 || p.WAL[1].Timeline != 2 || p.WAL[1].First != walSeg(2, 8) || p.WAL[1].Last != walSeg(2, 9) {
		t.Errorf("WAL ranges %+v, want timeline 1 to 9 and timeline 2 8..9", p.WAL)
	}

	a.walFile("00000003.history")
	a.wal(3, 5, 7)
	tl3 := a.backup(3, 6, 6, t0.Add(4*time.Hour), false)
	p = plan(t, a, Policy{Mode: Retain, Retain: 2}, now)
	// Retained: tl2 (from 10) and tl3 (from 6): everything from 6 on stays.
	if !slices.Equal(p.Kept.Backups, []string{tl2, tl3}) || p.Kept.WALFrom != walSeg(3, 6) {
		t.Fatalf("kept %v from %s", p.Kept.Backups, p.Kept.WALFrom)
	}
	checkPlan(t, p, union(a.backups[old], a.backups[tl1], keysOf(1, 1, 5), keysOf(3, 5, 5)))

	// everything takes history files too.
	p = plan(t, a, Policy{Mode: Everything}, now)
	for _, h := range []string{"00000002.history", "00000003.history"} {
		if !slices.Contains(doomed(p), walObjKey(h)) {
			t.Errorf("everything keeps %s", h)
		}
	}
}

func keysOf(tli uint32, first, last uint64) []string {
	var k []string
	for s := first; s <= last; s++ {
		k = append(k, walObjKey(walSeg(tli, s)))
	}
	return k
}

func TestPlanBeforeTime(t *testing.T) {
	a := newFake()
	b1 := a.backup(1, 2, 2, t0.Add(1*time.Hour), false)
	b2 := a.backup(1, 4, 4, t0.Add(2*time.Hour), false)
	b3 := a.backup(1, 6, 6, t0.Add(3*time.Hour), false)
	a.wal(1, 1, 8)
	now := t0.Add(10 * time.Hour)
	for _, c := range []struct {
		at      time.Time
		deleted []string
		note    bool
	}{
		{t0, nil, false},
		{t0.Add(1 * time.Hour), nil, false}, // b1 finished at, not before
		{t0.Add(90 * time.Minute), []string{b1}, false},
		{t0.Add(3 * time.Hour), []string{b1, b2}, false},
		{t0.Add(5 * time.Hour), nil, true}, // none finished after: keep them all
	} {
		p := plan(t, a, Policy{Mode: BeforeTime, Time: c.at}, now)
		if !slices.Equal(backupNames(p), c.deleted) || (len(p.Notes) > 0) != c.note {
			t.Errorf("before %s deletes %v (notes %v), want %v", c.at, backupNames(p), p.Notes, c.deleted)
		}
	}
	_ = b3
}

func TestPlanBeforeName(t *testing.T) {
	a := newFake()
	b1 := a.backup(1, 2, 2, t0.Add(1*time.Hour), false)
	b2 := a.backup(1, 4, 4, t0.Add(2*time.Hour), false)
	a.wal(1, 1, 5)
	p := plan(t, a, Policy{Mode: Before, Name: b2}, t0.Add(3*time.Hour))
	checkPlan(t, p, union(a.backups[b1], keysOf(1, 1, 3)))
	p = plan(t, a, Policy{Mode: Before, Name: b1}, t0.Add(3*time.Hour))
	checkPlan(t, p, keysOf(1, 1, 1))
	if _, err := planDelete(Policy{Mode: Before, Name: "base_000000010000000000000009_00000028"}, &a.inv, t0); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("before an unknown backup: %v", err)
	}
}

func TestPlanUnfinishedBackups(t *testing.T) {
	now := t0.Add(100 * time.Hour)
	a := newFake()
	b1 := a.backup(1, 10, 10, t0.Add(1*time.Hour), false)
	b2 := a.backup(1, 20, 20, t0.Add(2*time.Hour), false)
	a.wal(1, 1, 25)
	abandoned := a.unfinished("base_"+walSeg(1, 15)+"_00000028", now.Add(-25*time.Hour), false)
	interrupted := a.unfinished("base_"+walSeg(1, 5)+"_00000060", now.Add(-time.Minute), true)
	// A backup-push that started at segment 12, before b2 started, is
	// still running: its parts and the WAL from 12 on must survive.
	running := a.unfinished("base_"+walSeg(1, 12)+"_00000028", now.Add(-time.Hour), false)

	p := plan(t, a, Policy{Mode: Garbage}, now)
	checkPlan(t, p, union(abandoned, interrupted, keysOf(1, 1, 9)))
	if !slices.Equal(p.Kept.Unfinished, []string{"base_" + walSeg(1, 12) + "_00000028"}) {
		t.Errorf("kept unfinished %v", p.Kept.Unfinished)
	}

	p = plan(t, a, Policy{Mode: Retain, Retain: 1}, now)
	checkPlan(t, p, union(a.backups[b1], abandoned, interrupted, keysOf(1, 1, 11)))
	if p.Kept.WALFrom != walSeg(1, 12) {
		t.Errorf("WAL kept from %s, want the running backup's start %s", p.Kept.WALFrom, walSeg(1, 12))
	}
	_ = b2
	// A shorter grace takes the running one for abandoned.
	p = plan(t, a, Policy{Mode: Retain, Retain: 1, Grace: 30 * time.Minute}, now)
	checkPlan(t, p, union(a.backups[b1], abandoned, interrupted, running, keysOf(1, 1, 19)))

	// Young parts under a name that does not say where their WAL starts:
	// no WAL is deleted, and the plan says why.
	a.unfinished("manual-copy", now, false)
	p = plan(t, a, Policy{Mode: Retain, Retain: 1}, now)
	checkPlan(t, p, union(a.backups[b1], abandoned, interrupted))
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "manual-copy") {
		t.Errorf("notes %v", p.Notes)
	}
}

func TestPlanWithoutBackupsKeepsWAL(t *testing.T) {
	now := t0.Add(100 * time.Hour)
	a := newFake()
	a.wal(1, 1, 5)
	running := "base_" + walSeg(1, 3) + "_00000028"
	a.unfinished(running, now.Add(-time.Minute), false)
	for _, pol := range []Policy{{Mode: Garbage}, {Mode: Retain, Retain: 3}, {Mode: BeforeTime, Time: now}, {Mode: Before, Name: "LATEST"}} {
		p := plan(t, a, pol, now)
		checkPlan(t, p, nil)
		if !slices.Equal(p.Kept.Unfinished, []string{running}) || p.Kept.WALObjects != 5 {
			t.Errorf("%+v: kept %v and %d WAL objects", pol, p.Kept.Unfinished, p.Kept.WALObjects)
		}
	}
}

func TestPlanEverything(t *testing.T) {
	now := t0.Add(100 * time.Hour)
	a := newFake()
	b1 := a.backup(1, 2, 2, t0.Add(1*time.Hour), true)
	b2 := a.backup(1, 4, 4, t0.Add(2*time.Hour), false)
	running := a.unfinished("base_"+walSeg(1, 6)+"_00000028", now, false)
	w := a.wal(1, 1, 6)
	h := a.walFile("00000002.history")
	other := []string{"wal/README", "backups/notes.txt"}
	for _, k := range other {
		if strings.HasPrefix(k, archive.WALDir) {
			a.inv.wal = append(a.inv.wal, a.obj(k, t0))
		} else {
			a.inv.backups = append(a.inv.backups, a.obj(k, t0))
		}
	}
	id := a.obj(archive.IdentityKey, t0)
	a.inv.identity = &id
	p := plan(t, a, Policy{Mode: Everything}, now)
	checkPlan(t, p, union(a.backups[b1], a.backups[b2], running, w, []string{h}, other, []string{archive.IdentityKey}))
	// Any other form leaves unrecognised keys and walnut.json alone.
	p = plan(t, a, Policy{Mode: Garbage}, now)
	checkPlan(t, p, keysOf(1, 1, 1))
}

func TestPlanRefusesMixedSegmentSizes(t *testing.T) {
	a := newFake()
	a.backup(1, 2, 2, t0, false)
	a.backup(1, 4, 4, t0.Add(time.Hour), false)
	a.inv.sentinels[1].WALSegmentSize = 64 << 20
	if _, err := planDelete(Policy{Mode: Garbage, Grace: DefaultGrace}, &a.inv, t0); err == nil {
		t.Fatal("backups with different WAL segment sizes accepted")
	}
	if p, err := planDelete(Policy{Mode: Everything}, &a.inv, t0); err != nil || len(p.Backups) != 2 {
		t.Fatalf("everything with mixed segment sizes: %v", err)
	}
}

// Many random archives, checked against a plain statement of the rules:
// the retained backups are a suffix by finish time; their parts stay, and
// all WAL from the oldest one's start on; older permanent backups stay
// with their start..stop WAL; every other older backup goes, and every
// other segment before the cutoff; history files stay.
func TestPlanInvariants(t *testing.T) {
	for seed := range 300 {
		a := newFake()
		nb := 1 + seed%6
		for i := range nb {
			tli := uint32(1 + (seed+i)%3)
			start := uint64(2 + (seed*7+i*5)%30)
			finish := t0.Add(time.Duration((seed*13+i*29)%100) * time.Minute)
			a.backup(tli, start, start+uint64(i%3), finish, (seed+i)%4 == 0)
		}
		for tli := uint32(1); tli <= 3; tli++ {
			a.wal(tli, 1, 40)
			a.walFile(fmt.Sprintf("%08X.history", tli+1))
		}
		sorted := append([]*archive.Sentinel(nil), a.inv.sentinels...)
		archive.SortByFinish(sorted)
		beforeTime := t0.Add(time.Duration(seed%120) * time.Minute)
		for _, pol := range []Policy{
			{Mode: Retain, Retain: 1 + seed%3},
			{Mode: Before, Name: sorted[len(sorted)/2].Name},
			{Mode: BeforeTime, Time: beforeTime},
			{Mode: Garbage},
		} {
			var r int
			switch pol.Mode {
			case Retain:
				r = max(0, len(sorted)-pol.Retain)
			case Before:
				r = len(sorted) / 2
			case BeforeTime:
				for r < len(sorted) && sorted[r].FinishTime.Before(beforeTime) {
					r++
				}
				if r == len(sorted) {
					r = 0
				}
			}
			p := plan(t, a, pol, t0.Add(time.Hour))
			gone := map[string]bool{}
			for _, k := range doomed(p) {
				gone[k] = true
			}
			cutoff := ^uint64(0)
			for _, sn := range sorted[r:] {
				rg, _ := backupWAL(sn, testSegSize)
				cutoff = min(cutoff, rg.first)
			}
			var perm []segRange
			for i, sn := range sorted {
				keep := i >= r || sn.Permanent
				if i < r && sn.Permanent {
					rg, _ := backupWAL(sn, testSegSize)
					perm = append(perm, rg)
				}
				for _, k := range a.backups[sn.Name] {
					if gone[k] == keep {
						t.Fatalf("seed %d %+v: backup %s (permanent %v, retained %v): %s deleted %v", seed, pol, sn.Name, sn.Permanent, i >= r, k, gone[k])
					}
				}
			}
			for _, o := range a.inv.wal {
				f := parseWALFile(o, testSegSize)
				want := f.placed && f.seg < cutoff
				for _, rg := range perm {
					if f.tli == rg.tli && f.seg >= rg.first && f.seg <= rg.last {
						want = false
					}
				}
				if gone[o.Key] != want {
					t.Fatalf("seed %d %+v: %s deleted %v, want %v (cutoff %d)", seed, pol, o.Key, gone[o.Key], want, cutoff)
				}
			}
		}
	}
}

// A backup-push whose parts are all still uploads in flight shows nothing
// but its running marker: that alone keeps it and the WAL from its start,
// until the marker is older than the grace period.
func TestPlanKeepsABackupKnownOnlyByItsRunningMarker(t *testing.T) {
	now := t0.Add(100 * time.Hour)
	a := newFake()
	b1 := a.backup(1, 10, 10, t0.Add(1*time.Hour), false)
	a.backup(1, 20, 20, t0.Add(2*time.Hour), false)
	a.wal(1, 1, 25)
	name := "base_" + walSeg(1, 12) + "_00000028"
	marker := archive.RunningKey(name)
	a.inv.backups = append(a.inv.backups, a.obj(marker, now.Add(-time.Minute)))

	p := plan(t, a, Policy{Mode: Retain, Retain: 1, Grace: DefaultGrace}, now)
	checkPlan(t, p, union(a.backups[b1], keysOf(1, 1, 11)))
	if !slices.Equal(p.Kept.Unfinished, []string{name}) || p.Kept.WALFrom != walSeg(1, 12) {
		t.Errorf("kept unfinished %v, WAL from %s; want %s and its start", p.Kept.Unfinished, p.Kept.WALFrom, name)
	}
	// A marker left by a backup-push that was killed goes with garbage
	// once it is older than the grace period.
	p = plan(t, a, Policy{Mode: Garbage, Grace: DefaultGrace}, now.Add(DefaultGrace+time.Minute))
	checkPlan(t, p, union([]string{marker}, keysOf(1, 1, 9)))
}
