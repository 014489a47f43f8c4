package retention

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
)

// A delta is restored over its base's whole chain: delete keeps every
// backup of the chain of a kept delta, says why, and still removes a
// chain no kept backup needs.
func TestPlanKeepsChainOfKeptDelta(t *testing.T) {
	a := newFake()
	old := a.backup(1, 2, 3, t0.Add(1*time.Hour), false)
	full := a.backup(1, 4, 5, t0.Add(2*time.Hour), false)
	d1 := a.backup(1, 6, 7, t0.Add(3*time.Hour), false)
	d2 := a.backup(1, 8, 9, t0.Add(4*time.Hour), false)
	sns := a.inv.sentinels
	sns[2].DeltaBase, sns[2].DeltaDepth = full, 1
	sns[3].DeltaBase, sns[3].DeltaDepth = d1, 2
	a.wal(1, 1, 12)
	p := plan(t, a, Policy{Mode: Retain, Retain: 1}, t0.Add(5*time.Hour))
	var gone []string
	for _, b := range p.Backups {
		gone = append(gone, b.Name)
	}
	if !slices.Equal(gone, []string{old}) {
		t.Fatalf("retain 1 deletes %v; want only %s, outside the chain", gone, old)
	}
	for _, name := range []string{full, d1, d2} {
		if !slices.Contains(p.Kept.Backups, name) {
			t.Errorf("%s not kept: %v", name, p.Kept.Backups)
		}
	}
	notes := strings.Join(p.Notes, "\n")
	if !strings.Contains(notes, full+" is kept") || !strings.Contains(notes, d1+" is kept") || !strings.Contains(notes, d2) {
		t.Errorf("plan notes do not say why the chain is kept:\n%s", notes)
	}
	// WAL is still kept from the retained delta's start only.
	if p.Kept.WALFrom != walSeg(1, 8) {
		t.Errorf("WAL kept from %s, want %s", p.Kept.WALFrom, walSeg(1, 8))
	}
	// delete everything means everything.
	if p := plan(t, a, Policy{Mode: Everything}, t0.Add(5*time.Hour)); len(p.Backups) != 4 {
		t.Errorf("everything deletes %d backups, want 4", len(p.Backups))
	}
}

// backup-list's chain size: a full backup's own, a delta's with every
// backup under it, -1 when one of them is gone.
func TestChainSizes(t *testing.T) {
	full := &archive.Sentinel{Name: "f", StoredSize: 100}
	d1 := &archive.Sentinel{Name: "d1", StoredSize: 10, DeltaBase: "f", DeltaDepth: 1}
	d2 := &archive.Sentinel{Name: "d2", StoredSize: 1, DeltaBase: "d1", DeltaDepth: 2}
	orphan := &archive.Sentinel{Name: "o", StoredSize: 5, DeltaBase: "gone", DeltaDepth: 1}
	got := ChainSizes([]*archive.Sentinel{full, d1, d2, orphan})
	want := map[string]int64{"f": 100, "d1": 110, "d2": 111, "o": -1}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("chain size of %s = %d, want %d", name, got[name], w)
		}
	}
}

// A delta being taken now has no sentinel yet, only its running marker,
// which names its base: delete keeps that base and its chain while the
// marker is younger than the grace period, so the push does not fail at
// its end for want of them, and lets them go once it is older.
func TestPlanKeepsBaseOfRunningDelta(t *testing.T) {
	a := newFake()
	full := a.backup(1, 2, 3, t0.Add(1*time.Hour), false)
	d1 := a.backup(1, 4, 5, t0.Add(2*time.Hour), false)
	a.backup(1, 6, 7, t0.Add(3*time.Hour), false)
	a.inv.sentinels[1].DeltaBase, a.inv.sentinels[1].DeltaDepth = full, 1
	a.wal(1, 1, 12)
	now := t0.Add(5 * time.Hour)
	running := "base_" + walSeg(1, 10) + "_00000028"
	a.inv.backups = append(a.inv.backups, a.obj(archive.RunningKey(running), now.Add(-time.Minute)))
	a.inv.runningDeltas = map[string]string{running: d1}

	p := plan(t, a, Policy{Mode: Retain, Retain: 1, Grace: DefaultGrace}, now)
	if len(p.Backups) != 0 || !slices.Contains(p.Kept.Backups, full) || !slices.Contains(p.Kept.Backups, d1) {
		t.Fatalf("retain 1 with a delta running over %s: deletes %v, keeps %v", d1, p.Backups, p.Kept.Backups)
	}
	if notes := strings.Join(p.Notes, "\n"); !strings.Contains(notes, d1+" is kept: the running backup-push of the delta "+running) {
		t.Errorf("plan notes do not say why %s is kept:\n%s", d1, notes)
	}
	// A marker older than the grace period is a killed push's.
	p = plan(t, a, Policy{Mode: Retain, Retain: 1, Grace: DefaultGrace}, now.Add(DefaultGrace+time.Minute))
	var gone []string
	for _, b := range p.Backups {
		gone = append(gone, b.Name)
	}
	if !slices.Equal(gone, []string{full, d1}) {
		t.Errorf("retain 1 with a stale marker deletes %v, want %s and %s", gone, full, d1)
	}
}
