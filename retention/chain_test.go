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
