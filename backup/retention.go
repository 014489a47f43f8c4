package backup

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// DeleteMode is which form of delete was asked for.
type DeleteMode string

const (
	DeleteRetain     DeleteMode = "retain"
	DeleteBefore     DeleteMode = "before"
	DeleteBeforeTime DeleteMode = "before-time"
	DeleteEverything DeleteMode = "everything"
	DeleteGarbage    DeleteMode = "garbage"
)

// DefaultGrace is how old the newest part of a backup without a sentinel
// must be before delete takes it for abandoned. A running backup-push
// writes a part at least every --archive-timeout (10 minutes by default).
const DefaultGrace = 24 * time.Hour

// Policy says what a delete should remove.
type Policy struct {
	Mode   DeleteMode
	Retain int       // DeleteRetain: the newest backups to keep, at least 1
	Name   string    // DeleteBefore: the oldest backup to keep, or LATEST
	Time   time.Time // DeleteBeforeTime: backups finished before it go
	// Grace: a backup without a sentinel whose newest object is younger
	// may be a running backup-push, and is kept along with its WAL.
	Grace time.Duration
}

// tombstoneExt marks a backup whose delete has begun: delete writes
// backups/<name>.deleting before it removes the sentinel and removes it
// after the last part, so a later run finishes an interrupted delete at
// once, where parts without a sentinel or tombstone might still belong to a
// running backup-push and have to wait out the grace period.
const tombstoneExt = ".deleting"

func tombstoneKey(name string) string { return backupsDir + name + tombstoneExt }

// Plan is what a delete removes, in the order it removes it: backups
// (each sentinel first), then unfinished backups, then WAL, then other
// objects, then the archive's identity.
type Plan struct {
	Mode       DeleteMode         `json:"mode"`
	Backups    []BackupDeletion   `json:"backups"`
	Unfinished []UnfinishedBackup `json:"unfinished_backups"`
	WAL        []WALRange         `json:"wal"`
	Other      []string           `json:"other,omitempty"` // everything: unrecognised keys under wal/ and backups/
	Identity   bool               `json:"identity"`        // everything: walnut.json
	Kept       Kept               `json:"kept"`
	Notes      []string           `json:"notes,omitempty"`

	identitySize int64
	otherBytes   int64
}

// BackupDeletion is one committed backup to delete.
type BackupDeletion struct {
	Name       string    `json:"name"`
	FinishTime time.Time `json:"finish_time"`
	Permanent  bool      `json:"permanent"`
	Objects    int       `json:"objects"`
	Bytes      int64     `json:"bytes"`
	Deleted    bool      `json:"deleted"`

	sentinel string
	parts    []string
}

// UnfinishedBackup is a backup without a sentinel: abandoned by a failed
// or killed backup-push, or left by an interrupted delete.
type UnfinishedBackup struct {
	Name              string    `json:"name"`
	LastModified      time.Time `json:"last_modified"`
	InterruptedDelete bool      `json:"interrupted_delete"`
	Objects           int       `json:"objects"`
	Bytes             int64     `json:"bytes"`
	Deleted           bool      `json:"deleted"`

	parts     []string
	tombstone string
}

// WALRange is a run of archived WAL files of one timeline, First to Last
// by name, with no kept file of that timeline between them.
type WALRange struct {
	Timeline uint32 `json:"timeline"`
	First    string `json:"first"`
	Last     string `json:"last"`
	Objects  int    `json:"objects"`
	Bytes    int64  `json:"bytes"`
	Deleted  bool   `json:"deleted"`

	keys []string
}

// Kept summarises what stays.
type Kept struct {
	Backups    []string `json:"backups"`
	Permanent  []string `json:"permanent"` // those of Backups that are permanent
	Unfinished []string `json:"unfinished_backups"`
	// WALFrom is the oldest kept backup's start segment: WAL from this
	// position on is kept on every timeline.
	WALFrom    string `json:"wal_from,omitempty"`
	WALObjects int    `json:"wal_objects"`
	WALBytes   int64  `json:"wal_bytes"`
}

// Objects is how many objects the plan removes.
func (p *Plan) Objects() int {
	n := len(p.Other)
	for _, b := range p.Backups {
		n += b.Objects
	}
	for _, u := range p.Unfinished {
		n += u.Objects
	}
	for _, w := range p.WAL {
		n += w.Objects
	}
	if p.Identity {
		n++
	}
	return n
}

// Bytes is how many stored bytes the plan removes.
func (p *Plan) Bytes() int64 {
	n := p.otherBytes
	for _, b := range p.Backups {
		n += b.Bytes
	}
	for _, u := range p.Unfinished {
		n += u.Bytes
	}
	for _, w := range p.WAL {
		n += w.Bytes
	}
	if p.Identity {
		n += p.identitySize
	}
	return n
}

// inventory is everything the planner looks at, as listed at one moment.
type inventory struct {
	sentinels []*Sentinel          // committed backups, oldest first by finish time
	backups   []storage.ObjectInfo // every object under backups/
	wal       []storage.ObjectInfo // every object under wal/
	identity  *storage.ObjectInfo  // walnut.json, if present
}

// backupObjects is what the keys under backups/ say about one name.
type backupObjects struct {
	sentinel  *storage.ObjectInfo
	tombstone *storage.ObjectInfo
	parts     []storage.ObjectInfo
}

func (b *backupObjects) newest() time.Time {
	var t time.Time
	for _, o := range b.parts {
		if o.ModTime.After(t) {
			t = o.ModTime
		}
	}
	if b.tombstone != nil && b.tombstone.ModTime.After(t) {
		t = b.tombstone.ModTime
	}
	return t
}

// segRange is WAL a permanent backup outside the retained ones needs to be
// restored to its end point: start to stop segment on its timeline.
type segRange struct {
	tli         uint32
	first, last uint64
}

// planDelete decides what a delete removes. It reads nothing: inv is the
// archive as listed, now the clock to age unfinished backups against.
//
// The retained backups are the newest ones the policy names; they are
// kept for point-in-time recovery from their start to the end of the
// archive, so every WAL file from the oldest one's start segment on is
// kept, on every timeline (a superset of the timelines that lead to a
// retained backup or from it, decided without reading history files,
// which may be encrypted). Older permanent backups are kept with the WAL
// from their start to their stop segment: enough to restore them to their
// end point. History files are always kept. A backup without a sentinel
// younger than the grace period may be a running backup-push: its parts
// and the WAL from its start segment on are kept.
func planDelete(p Policy, inv *inventory, now time.Time) (*Plan, error) {
	plan := &Plan{Mode: p.Mode, Kept: Kept{Backups: []string{}, Permanent: []string{}, Unfinished: []string{}}}
	byName := map[string]*backupObjects{}
	get := func(name string) *backupObjects {
		b := byName[name]
		if b == nil {
			b = &backupObjects{}
			byName[name] = b
		}
		return b
	}
	var otherBackupKeys []storage.ObjectInfo
	for _, o := range inv.backups {
		rest := strings.TrimPrefix(o.Key, backupsDir)
		switch {
		case strings.Contains(rest, "/"):
			name, _, _ := strings.Cut(rest, "/")
			if validBackupName(name) != nil {
				otherBackupKeys = append(otherBackupKeys, o)
				continue
			}
			get(name).parts = append(get(name).parts, o)
		case backupNameFromSentinel(o.Key) != "":
			get(backupNameFromSentinel(o.Key)).sentinel = &o
		case strings.HasSuffix(rest, tombstoneExt) && validBackupName(strings.TrimSuffix(rest, tombstoneExt)) == nil:
			get(strings.TrimSuffix(rest, tombstoneExt)).tombstone = &o
		default:
			otherBackupKeys = append(otherBackupKeys, o)
		}
	}

	sentinels := append([]*Sentinel(nil), inv.sentinels...)
	sortByFinish(sentinels)
	retained, candidates, err := splitRetained(p, sentinels, plan)
	if err != nil {
		return nil, err
	}
	committed := map[string]bool{}
	for _, sn := range sentinels {
		committed[sn.Name] = true
	}

	segSize, err := archiveSegmentSize(sentinels)
	if err != nil && p.Mode != DeleteEverything { // everything needs no positions
		return nil, err
	}
	var permanent []segRange
	for _, sn := range candidates {
		if sn.Permanent && p.Mode != DeleteEverything {
			r, err := backupWAL(sn, segSize)
			if err != nil {
				return nil, err
			}
			permanent = append(permanent, r)
			plan.Kept.Backups = append(plan.Kept.Backups, sn.Name)
			plan.Kept.Permanent = append(plan.Kept.Permanent, sn.Name)
			continue
		}
		b := get(sn.Name)
		d := BackupDeletion{Name: sn.Name, FinishTime: sn.FinishTime, Permanent: sn.Permanent, sentinel: sentinelKey(sn.Name)}
		d.Objects++
		if b.sentinel != nil {
			d.Bytes += b.sentinel.Size
		}
		for _, o := range b.parts {
			d.parts = append(d.parts, o.Key)
			d.Objects++
			d.Bytes += o.Size
		}
		plan.Backups = append(plan.Backups, d)
	}
	for _, sn := range retained {
		plan.Kept.Backups = append(plan.Kept.Backups, sn.Name)
		if sn.Permanent {
			plan.Kept.Permanent = append(plan.Kept.Permanent, sn.Name)
		}
	}

	// Without a retained backup there is no point from which WAL is needed:
	// keep all of it (an archive whose first backup is still running).
	haveCutoff := len(retained) > 0
	var cutoff uint64
	if haveCutoff {
		cutoff = ^uint64(0)
		for _, sn := range retained {
			r, err := backupWAL(sn, segSize)
			if err != nil {
				return nil, err
			}
			if r.first < cutoff {
				cutoff = r.first
				plan.Kept.WALFrom = sn.StartSegment
			}
		}
	}

	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		b := byName[name]
		if committed[name] || b.sentinel != nil {
			continue // committed, or its sentinel went between listing and reading: the next run sees it
		}
		u := UnfinishedBackup{Name: name, LastModified: b.newest(), InterruptedDelete: b.tombstone != nil}
		for _, o := range b.parts {
			u.parts = append(u.parts, o.Key)
			u.Objects++
			u.Bytes += o.Size
		}
		if b.tombstone != nil {
			u.tombstone = b.tombstone.Key
			u.Objects++
			u.Bytes += b.tombstone.Size
		}
		if p.Mode == DeleteEverything || u.InterruptedDelete || now.Sub(u.LastModified) >= p.Grace {
			plan.Unfinished = append(plan.Unfinished, u)
			continue
		}
		plan.Kept.Unfinished = append(plan.Kept.Unfinished, name)
		// A running backup-push needs the WAL from its start on, which may
		// be older than the oldest committed backup's when two overlap.
		if start, ok := startSegmentOfName(name, segSize); ok {
			if haveCutoff && start < cutoff {
				cutoff = start
				plan.Kept.WALFrom = name[len("base_"):][:24]
			}
		} else if haveCutoff {
			haveCutoff = false
			plan.Notes = append(plan.Notes, fmt.Sprintf("no WAL deleted: %s has no sentinel, is younger than %s and its name does not say where its WAL starts", name, p.Grace))
		}
	}

	planWAL(p, inv.wal, segSize, haveCutoff, cutoff, permanent, plan)
	if p.Mode == DeleteEverything {
		for _, o := range otherBackupKeys {
			plan.Other = append(plan.Other, o.Key)
			plan.otherBytes += o.Size
		}
		if inv.identity != nil {
			plan.Identity = true
			plan.identitySize = inv.identity.Size
		}
	}
	return plan, nil
}

// splitRetained returns the backups the policy keeps for point-in-time
// recovery, and the older ones it would delete unless permanent.
func splitRetained(p Policy, all []*Sentinel, plan *Plan) (retained, candidates []*Sentinel, err error) {
	r := 0
	switch p.Mode {
	case DeleteRetain:
		if p.Retain < 1 {
			return nil, nil, errors.New("retain: keep at least 1 backup (delete everything removes all)")
		}
		r = max(0, len(all)-p.Retain)
	case DeleteBefore:
		if p.Name == "LATEST" {
			r = max(0, len(all)-1)
			break
		}
		r = -1
		for i, sn := range all {
			if sn.Name == p.Name {
				r = i
			}
		}
		if r < 0 {
			return nil, nil, fmt.Errorf("backup %q not found (no %s); see walnut backup-list: %w", p.Name, sentinelKey(p.Name), storage.ErrNotFound)
		}
	case DeleteBeforeTime:
		// As WAL-G: the oldest backup finished at or after the time is kept
		// with everything newer. With none, every backup stays: a policy
		// that would leave no backup is more likely a mistake than a wish.
		r = sort.Search(len(all), func(i int) bool { return !all[i].FinishTime.Before(p.Time) })
		if r == len(all) && r > 0 {
			plan.Notes = append(plan.Notes, fmt.Sprintf("no backup finished at or after %s: every backup is kept", p.Time.UTC().Format(time.RFC3339)))
			r = 0
		}
	case DeleteGarbage:
		r = 0
	case DeleteEverything:
		r = len(all)
	default:
		return nil, nil, fmt.Errorf("unknown delete mode %q", p.Mode)
	}
	return all[r:], all[:r], nil
}

// archiveSegmentSize is the WAL segment size every backup records; one
// archive holds one cluster, so they must agree.
func archiveSegmentSize(sentinels []*Sentinel) (uint64, error) {
	var size uint64
	for _, sn := range sentinels {
		if !pgcontrol.ValidSegmentSize(sn.WALSegmentSize) {
			return 0, fmt.Errorf("%s: invalid WAL segment size %d", sentinelKey(sn.Name), sn.WALSegmentSize)
		}
		if size != 0 && sn.WALSegmentSize != size {
			return 0, fmt.Errorf("%s: WAL segment size %d differs from other backups' %d; refusing to judge WAL by position",
				sentinelKey(sn.Name), sn.WALSegmentSize, size)
		}
		size = sn.WALSegmentSize
	}
	return size, nil
}

// backupWAL is the WAL a backup needs to reach consistency.
func backupWAL(sn *Sentinel, segSize uint64) (segRange, error) {
	tli, first, err := pgcontrol.ParseWALFileName(sn.StartSegment, segSize)
	if err != nil {
		return segRange{}, fmt.Errorf("%s: start segment: %w", sentinelKey(sn.Name), err)
	}
	stopTLI, last, err := pgcontrol.ParseWALFileName(sn.StopSegment, segSize)
	if err != nil {
		return segRange{}, fmt.Errorf("%s: stop segment: %w", sentinelKey(sn.Name), err)
	}
	if stopTLI != tli || last < first {
		return segRange{}, fmt.Errorf("%s: stop segment %s does not follow start segment %s", sentinelKey(sn.Name), sn.StopSegment, sn.StartSegment)
	}
	return segRange{tli: tli, first: first, last: last}, nil
}

// startSegmentOfName reads the start segment from a backup name
// (base_<segment>_<offset>), for backups that have no sentinel yet.
func startSegmentOfName(name string, segSize uint64) (uint64, bool) {
	rest, ok := strings.CutPrefix(name, "base_")
	if !ok || len(rest) != 24+1+8 || rest[24] != '_' || segSize == 0 {
		return 0, false
	}
	_, seg, err := pgcontrol.ParseWALFileName(rest[:24], segSize)
	return seg, err == nil
}

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
	w, err := parseWALKey(o.Key)
	if err != nil || !pgcontrol.IsArchivableName(w.Name) {
		return f
	}
	f.name = w.Name
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
		if p.Mode == DeleteEverything {
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
