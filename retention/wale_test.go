package retention

import (
	"slices"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
)

// waleBackup adds a backup WAL-E made, as takeInventory lists it: its
// sentinel, extended_version.txt and partitions under basebackups_005/.
func (a *fakeArchive) waleBackup(start, stop uint64, finish time.Time) string {
	startSeg := walSeg(1, start)
	name := "base_" + startSeg + "_00000040"
	a.inv.sentinels = append(a.inv.sentinels, &archive.Sentinel{
		Name: name, Source: archive.WALESource, Timeline: 1, FinishTime: finish,
		StartSegment: startSeg, StopSegment: walSeg(1, stop), WALSegmentSize: testSegSize,
	})
	keys := []string{archive.WALESentinelKey(name), archive.WALEBackupPrefix(name) + "extended_version.txt"}
	for _, p := range []string{"part_00000000.tar.lzo", "part_00000001.tar.lzo"} {
		keys = append(keys, archive.WALEPartitionsPrefix(name)+p)
	}
	for _, k := range keys {
		a.inv.backups = append(a.inv.backups, a.obj(k, finish))
	}
	a.backups[name] = keys
	return name
}

func (a *fakeArchive) waleWAL(first, last uint64) []string {
	var keys []string
	for s := first; s <= last; s++ {
		k := archive.WALEWALKey(walSeg(1, s))
		a.inv.wal = append(a.inv.wal, a.obj(k, t0))
		keys = append(keys, k)
	}
	return keys
}

// A mixed archive: WAL-E's backups and WAL, then walnut's, retire by one
// rule, oldest first by finish time, never WAL a kept backup needs.
func TestPlanMixedWALEArchive(t *testing.T) {
	a := newFake()
	w1 := a.waleBackup(2, 3, t0.Add(1*time.Hour))
	w2 := a.waleBackup(5, 6, t0.Add(2*time.Hour))
	oldWALE := a.waleWAL(1, 4)
	keptWALE := a.waleWAL(5, 8)
	a.wal(1, 9, 10)
	n1 := a.backup(1, 9, 10, t0.Add(3*time.Hour), false)
	a.walFile("00000002.history")

	p := plan(t, a, Policy{Mode: Retain, Retain: 2}, t0.Add(4*time.Hour))
	checkPlan(t, p, union(a.backups[w1], oldWALE))
	if !slices.Equal(p.Kept.Backups, []string{w2, n1}) || p.Backups[0].Source != archive.WALESource {
		t.Errorf("kept %v, deleted %+v", p.Kept.Backups, p.Backups)
	}

	p = plan(t, a, Policy{Mode: Retain, Retain: 1}, t0.Add(4*time.Hour))
	checkPlan(t, p, union(a.backups[w1], a.backups[w2], oldWALE, keptWALE))

	p = plan(t, a, Policy{Mode: Before, Name: w2}, t0.Add(4*time.Hour))
	checkPlan(t, p, union(a.backups[w1], oldWALE))
}

// A delete of a WAL-E backup interrupted after its sentinel went leaves
// its tombstone in backups/ and its parts under basebackups_005/: the next
// run finishes both at once, without waiting out the grace period.
func TestPlanInterruptedWALEDelete(t *testing.T) {
	a := newFake()
	name := "base_" + walSeg(1, 2) + "_00000040"
	tomb := archive.TombstoneKey(name)
	part := archive.WALEPartitionsPrefix(name) + "part_00000001.tar.lzo"
	a.inv.backups = append(a.inv.backups, a.obj(tomb, t0), a.obj(part, t0))
	a.backup(1, 5, 6, t0.Add(time.Hour), false)
	a.wal(1, 5, 6)
	p := plan(t, a, Policy{Mode: Retain, Retain: 1}, t0.Add(time.Minute))
	checkPlan(t, p, union([]string{part, tomb}))
	if len(p.Unfinished) != 1 || !p.Unfinished[0].InterruptedDelete {
		t.Fatalf("unfinished %+v, want the WAL-E backup's parts with its tombstone", p.Unfinished)
	}
}
