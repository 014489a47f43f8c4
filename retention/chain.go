package retention

import (
	"fmt"

	"github.com/walnut-pg/walnut/archive"
)

// keepChains takes out of candidates every backup a kept delta is
// restored over (its base, that one's base, down to the full backup),
// keeps it, and says why in the plan: a delta whose chain is broken cannot
// be restored. Such a backup keeps no WAL of its own: a restore reads WAL
// from the delta's start only. running maps the base of each delta that a
// backup-push is taking now to that backup's name: its chain is kept too,
// or the push would fail at its end.
func keepChains(mode Mode, candidates, retained []*archive.Sentinel, running map[string]string, plan *Plan) []*archive.Sentinel {
	if mode == Everything {
		return candidates
	}
	byName := make(map[string]*archive.Sentinel, len(candidates))
	for _, sn := range candidates {
		byName[sn.Name] = sn
	}
	why := map[string]string{} // base -> why it is kept
	need := func(base, reason string) {
		for base != "" {
			if _, seen := why[base]; seen {
				return
			}
			why[base] = reason
			b := byName[base]
			if b == nil {
				return
			}
			base = b.DeltaBase
		}
	}
	kept := append([]*archive.Sentinel(nil), retained...)
	for _, sn := range candidates {
		if sn.Permanent {
			kept = append(kept, sn)
		}
	}
	for _, k := range kept {
		if k.IsDelta() {
			need(k.DeltaBase, "the kept delta backup "+k.Name+" is restored over it")
		}
	}
	for base, name := range running {
		need(base, "the running backup-push of the delta "+name+" is taken over it")
	}
	var rest []*archive.Sentinel
	for _, sn := range candidates {
		reason, ok := why[sn.Name]
		if !ok || sn.Permanent { // a permanent one is kept anyway
			rest = append(rest, sn)
			continue
		}
		plan.Kept.Backups = append(plan.Kept.Backups, sn.Name)
		plan.Notes = append(plan.Notes, fmt.Sprintf("backup %s is kept: %s", sn.Name, reason))
	}
	return rest
}
