package retention

import (
	"fmt"

	"github.com/walnut-pg/walnut/archive"
)

// keepChains takes out of candidates every backup a kept delta is
// restored over (its base, that one's base, down to the full backup),
// keeps it, and says why in the plan: a delta whose chain is broken cannot
// be restored. Such a backup keeps no WAL of its own: a restore reads WAL
// from the delta's start only.
func keepChains(mode Mode, candidates, retained []*archive.Sentinel, plan *Plan) []*archive.Sentinel {
	if mode == Everything {
		return candidates
	}
	byName := make(map[string]*archive.Sentinel, len(candidates))
	for _, sn := range candidates {
		byName[sn.Name] = sn
	}
	neededBy := map[string]string{} // base -> the kept delta that needs it
	kept := append([]*archive.Sentinel(nil), retained...)
	for _, sn := range candidates {
		if sn.Permanent {
			kept = append(kept, sn)
		}
	}
	for _, k := range kept {
		for b := k; b != nil && b.IsDelta(); b = byName[b.DeltaBase] {
			if _, seen := neededBy[b.DeltaBase]; seen {
				break
			}
			neededBy[b.DeltaBase] = k.Name
		}
	}
	var rest []*archive.Sentinel
	for _, sn := range candidates {
		by, ok := neededBy[sn.Name]
		if !ok || sn.Permanent { // a permanent one is kept anyway
			rest = append(rest, sn)
			continue
		}
		plan.Kept.Backups = append(plan.Kept.Backups, sn.Name)
		plan.Notes = append(plan.Notes, fmt.Sprintf("backup %s is kept: the kept delta backup %s is restored over it", sn.Name, by))
	}
	return rest
}
