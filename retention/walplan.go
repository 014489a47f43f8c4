package retention

import (
	"sort"
	"strconv"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// walFile is one object under wal/ with its place in the archive.
type walFile struct {
	storage.ObjectInfo
	name   string // "" when the key is not one walnut writes
	tli    uint32
	seg    uint64
	placed bool // a segment, .partial or .backup file: tli and seg are its position
}

func parseWALFile(o storage.ObjectInfo, segSize uint64) walFile {
	f := walFile{ObjectInfo: o}
	name := archive.ParseWALEWALKey(o.Key)
	if name == "" {
		w, err := archive.ParseWALKey(o.Key)
		if err != nil {
			return f
		}
		name = w.Name
	}
	if !pgcontrol.IsArchivableName(name) {
		return f
	}
	f.name = name
	if tli, err := strconv.ParseUint(f.name[:8], 16, 32); err == nil {
		f.tli = uint32(tli)
	}
	if pgcontrol.IsHistoryFileName(f.name) || segSize == 0 {
		return f
	}
	if tli, seg, err := pgcontrol.ParseWALFileName(f.name[:24], segSize); err == nil {
		f.tli, f.seg, f.placed = tli, seg, true
	}
	return f
}

func planWAL(p Policy, objects []storage.ObjectInfo, segSize uint64, haveCutoff bool, cutoff uint64, permanent []segRange, plan *Plan) {
	files := make([]walFile, 0, len(objects))
	for _, o := range objects {
		files = append(files, parseWALFile(o, segSize))
	}
	sort.SliceStable(files, func(i, j int) bool {
		a, b := files[i], files[j]
		if a.tli != b.tli {
			return a.tli < b.tli
		}
		if a.placed != b.placed {
			return !a.placed
		}
		if a.seg != b.seg {
			return a.seg < b.seg
		}
		return a.Key < b.Key
	})
	doomed := func(f walFile) bool {
		if p.Mode == Everything {
			return true
		}
		if !f.placed || !haveCutoff || f.seg >= cutoff {
			return false
		}
		for _, r := range permanent {
			if f.tli == r.tli && f.seg >= r.first && f.seg <= r.last {
				return false
			}
		}
		return true
	}
	var run *WALRange
	for _, f := range files {
		switch {
		case !doomed(f):
			plan.Kept.WALObjects++
			plan.Kept.WALBytes += f.Size
			if run != nil && run.Timeline == f.tli {
				run = nil // a kept file splits the timeline's run
			}
			continue
		case f.name == "":
			plan.Other = append(plan.Other, f.Key)
			plan.otherBytes += f.Size
			continue
		}
		if run == nil || run.Timeline != f.tli {
			plan.WAL = append(plan.WAL, WALRange{Timeline: f.tli, First: f.name})
			run = &plan.WAL[len(plan.WAL)-1]
		}
		run.Last = f.name
		run.Objects++
		run.Bytes += f.Size
		run.keys = append(run.keys, f.Key)
	}
}
