package retention

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// Mode is which form of delete was asked for.
type Mode string

const (
	Retain     Mode = "retain"
	Before     Mode = "before"
	BeforeTime Mode = "before-time"
	Everything Mode = "everything"
	Garbage    Mode = "garbage"
)

// DefaultGrace is how old the newest part of a backup without a sentinel
// must be before delete takes it for abandoned. A running backup-push
// writes a part at least every --archive-timeout (10 minutes by default).
const DefaultGrace = 24 * time.Hour

// Policy says what a delete should remove.
type Policy struct {
	Mode   Mode
	Retain int       // Retain: the newest backups to keep, at least 1
	Name   string    // Before: the oldest backup to keep, or LATEST
	Time   time.Time // BeforeTime: backups finished before it go
	// Grace: a backup without a sentinel whose newest object is younger
	// may be a running backup-push, and is kept along with its WAL.
	Grace time.Duration
}

// Plan is what a delete removes, in the order it removes it: backups
// (each sentinel first), then unfinished backups, then WAL, then other
// objects, then the archive's identity; garbage also removes the temp
// files that killed uploads left in a file:// archive.
type Plan struct {
	Mode       Mode               `json:"mode"`
	Backups    []BackupDeletion   `json:"backups"`
	Unfinished []UnfinishedBackup `json:"unfinished_backups"`
	WAL        []WALRange         `json:"wal"`
	Other      []string           `json:"other,omitempty"` // everything: unrecognised keys under wal/ and backups/
	Identity   bool               `json:"identity"`        // everything: walnut.json
	Temps      []TempFile         `json:"temp_files"`      // garbage: temp files older than the grace period
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
	Source     string    `json:"source,omitempty"` // "wal-e" for WAL-E's backups

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

// TempFile is a temp file that an upload into a file:// archive killed
// midway left behind (storage.TempSweeper): never an object, never
// listed, and removed by delete garbage once it has not been written to
// for the grace period.
type TempFile struct {
	Key          string    `json:"key"`
	Bytes        int64     `json:"bytes"`
	LastModified time.Time `json:"last_modified"`
	Deleted      bool      `json:"deleted"`
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
	// TempFiles counts the temp files younger than the grace period:
	// uploads that may still be running.
	TempFiles int `json:"temp_files"`
}

// Objects is how many objects (temp files included) the plan removes.
func (p *Plan) Objects() int {
	n := len(p.Other) + len(p.Temps)
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
	for _, f := range p.Temps {
		n += f.Bytes
	}
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
	sentinels []*archive.Sentinel  // committed backups, oldest first by finish time
	backups   []storage.ObjectInfo // every object under backups/
	wal       []storage.ObjectInfo // every object under wal/
	identity  *storage.ObjectInfo  // walnut.json, if present
	temps     []storage.ObjectInfo // temp files of unfinished uploads (garbage only)
	// runningDeltas maps a backup without a sentinel whose running marker
	// says it is a delta to its base.
	runningDeltas map[string]string
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
	pl := &planner{
		policy: p,
		now:    now,
		plan:   &Plan{Mode: p.Mode, Kept: Kept{Backups: []string{}, Permanent: []string{}, Unfinished: []string{}}},
	}
	pl.groupBackupObjects(inv.backups)
	sentinels := append([]*archive.Sentinel(nil), inv.sentinels...)
	archive.SortByFinish(sentinels)
	retained, candidates, err := splitRetained(p, sentinels, pl.plan)
	if err != nil {
		return nil, err
	}
	pl.segSize, err = archiveSegmentSize(sentinels)
	if err != nil && p.Mode != Everything { // everything needs no positions
		return nil, err
	}
	// A marker the grace period would let go names no push still running.
	running := map[string]string{}
	for name, base := range inv.runningDeltas {
		if b := pl.byName[name]; b != nil && b.sentinel == nil && b.tombstone == nil && now.Sub(b.newest()) < p.Grace {
			running[base] = name
		}
	}
	candidates = keepChains(p.Mode, candidates, retained, running, pl.plan)
	if err := pl.planBackups(candidates, retained); err != nil {
		return nil, err
	}
	if err := pl.setCutoff(retained); err != nil {
		return nil, err
	}
	committed := map[string]bool{}
	for _, sn := range sentinels {
		if sn.IsWALE() {
			committed[waleGroup+sn.Name] = true
			continue
		}
		committed[sn.Name] = true
	}
	pl.planUnfinished(committed)
	planWAL(p, inv.wal, pl.segSize, pl.haveCutoff, pl.cutoff, pl.permanent, pl.plan)
	if p.Mode == Everything {
		for _, o := range pl.otherBackupKeys {
			pl.plan.Other = append(pl.plan.Other, o.Key)
			pl.plan.otherBytes += o.Size
		}
		if inv.identity != nil {
			pl.plan.Identity = true
			pl.plan.identitySize = inv.identity.Size
		}
	}
	if p.Mode == Garbage {
		pl.planTemps(inv.temps)
	}
	return pl.plan, nil
}

// planTemps takes the temp files not written to for the grace period: an
// upload writes its temp file without pause, so those belong to a process
// that died. Younger ones may be uploads in progress, and stay.
func (pl *planner) planTemps(temps []storage.ObjectInfo) {
	for _, t := range temps {
		if pl.now.Sub(t.ModTime) < pl.policy.Grace {
			pl.plan.Kept.TempFiles++
			continue
		}
		pl.plan.Temps = append(pl.plan.Temps, TempFile{Key: t.Key, Bytes: t.Size, LastModified: t.ModTime})
	}
}

// planner holds what planDelete's steps learn and share.
type planner struct {
	policy          Policy
	now             time.Time
	plan            *Plan
	segSize         uint64
	byName          map[string]*backupObjects
	otherBackupKeys []storage.ObjectInfo // under backups/ but no backup's
	permanent       []segRange           // WAL older permanent backups keep
	// WAL files of a segment before cutoff may go; without a cutoff, none.
	haveCutoff bool
	cutoff     uint64
}

// groupBackupObjects sorts the keys under backups/ by the backup they
// belong to.
func (pl *planner) groupBackupObjects(objects []storage.ObjectInfo) {
	pl.byName = map[string]*backupObjects{}
	for _, o := range objects {
		if archive.IsWALEKey(o.Key) {
			pl.groupWALEObject(o)
			continue
		}
		name := ""
		rest := strings.TrimPrefix(o.Key, archive.BackupsDir)
		if dir, _, ok := strings.Cut(rest, "/"); ok {
			name = dir
		} else if name = archive.BackupNameFromSentinel(o.Key); name == "" {
			name = archive.BackupNameFromTombstone(o.Key)
		}
		if archive.ValidBackupName(name) != nil {
			pl.otherBackupKeys = append(pl.otherBackupKeys, o)
			continue
		}
		b := pl.get(name)
		switch {
		case strings.Contains(rest, "/"):
			b.parts = append(b.parts, o)
		case archive.BackupNameFromSentinel(o.Key) != "":
			b.sentinel = &o
		default:
			b.tombstone = &o
		}
	}
}

// waleGroup names WAL-E's backups in byName apart from walnut's.
const waleGroup = "wal-e:"

// groupWALEObject files a key under basebackups_005/ with its backup.
func (pl *planner) groupWALEObject(o storage.ObjectInfo) {
	if name := archive.WALENameFromSentinel(o.Key); name != "" {
		pl.get(waleGroup + name).sentinel = &o
		return
	}
	rest := strings.TrimPrefix(o.Key, archive.WALEBackupsDir)
	if dir, _, ok := strings.Cut(rest, "/"); ok && archive.IsWALEBackupName(dir) {
		b := pl.get(waleGroup + dir)
		b.parts = append(b.parts, o)
		return
	}
	pl.otherBackupKeys = append(pl.otherBackupKeys, o)
}

func (pl *planner) get(name string) *backupObjects {
	b := pl.byName[name]
	if b == nil {
		b = &backupObjects{}
		pl.byName[name] = b
	}
	return b
}

// planBackups lists the candidates to delete, keeping the permanent ones
// with their WAL, and records the retained ones as kept.
func (pl *planner) planBackups(candidates, retained []*archive.Sentinel) error {
	plan := pl.plan
	for _, sn := range candidates {
		if sn.Permanent && pl.policy.Mode != Everything {
			r, err := backupWAL(sn, pl.segSize)
			if err != nil {
				return err
			}
			pl.permanent = append(pl.permanent, r)
			plan.Kept.Backups = append(plan.Kept.Backups, sn.Name)
			plan.Kept.Permanent = append(plan.Kept.Permanent, sn.Name)
			continue
		}
		b := pl.get(sn.Name)
		d := BackupDeletion{Name: sn.Name, FinishTime: sn.FinishTime, Permanent: sn.Permanent, sentinel: archive.SentinelKey(sn.Name)}
		if sn.IsWALE() {
			b = pl.get(waleGroup + sn.Name)
			d.Source, d.sentinel = sn.Source, archive.WALESentinelKey(sn.Name)
		}
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
	return nil
}

// setCutoff keeps WAL from the oldest retained backup's start on. Without
// a retained backup there is no point from which WAL is needed: all of it
// is kept (an archive whose first backup is still running).
func (pl *planner) setCutoff(retained []*archive.Sentinel) error {
	if len(retained) == 0 {
		return nil
	}
	pl.haveCutoff = true
	pl.cutoff = ^uint64(0)
	for _, sn := range retained {
		r, err := backupWAL(sn, pl.segSize)
		if err != nil {
			return err
		}
		if r.first < pl.cutoff {
			pl.cutoff = r.first
			pl.plan.Kept.WALFrom = sn.StartSegment
		}
	}
	return nil
}

// planUnfinished deletes backups without a sentinel once they are older
// than the grace period, or left by an interrupted delete; a younger one
// may be a running backup-push, and keeps its WAL.
func (pl *planner) planUnfinished(committed map[string]bool) {
	plan := pl.plan
	names := make([]string, 0, len(pl.byName))
	for n := range pl.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		b := pl.byName[name]
		if committed[name] || b.sentinel != nil {
			continue // committed, or its sentinel went between listing and reading: the next run sees it
		}
		walName, isWALE := strings.CutPrefix(name, waleGroup)
		if wb := pl.byName[waleGroup+name]; !isWALE && wb != nil && len(b.parts) == 0 && !committed[waleGroup+name] && wb.sentinel == nil {
			continue // the tombstone of a WAL-E backup's interrupted delete: goes with its parts below
		}
		if isWALE {
			// delete's tombstone for a WAL-E backup lies in backups/, with
			// walnut's, where WAL-E never looks.
			if tb := pl.byName[walName]; tb != nil && tb.tombstone != nil && len(tb.parts) == 0 {
				b.tombstone = tb.tombstone
			}
			name = walName
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
		if pl.policy.Mode == Everything || u.InterruptedDelete || pl.now.Sub(u.LastModified) >= pl.policy.Grace {
			plan.Unfinished = append(plan.Unfinished, u)
			continue
		}
		plan.Kept.Unfinished = append(plan.Kept.Unfinished, name)
		// A running backup-push needs the WAL from its start on, which may
		// be older than the oldest committed backup's when two overlap.
		if start, ok := startSegmentOfName(name, pl.segSize); ok {
			if pl.haveCutoff && start < pl.cutoff {
				pl.cutoff = start
				plan.Kept.WALFrom = name[len("base_"):][:24]
			}
		} else if pl.haveCutoff {
			pl.haveCutoff = false
			plan.Notes = append(plan.Notes, fmt.Sprintf("no WAL deleted: %s has no sentinel, is younger than %s and its name does not say where its WAL starts", name, pl.policy.Grace))
		}
	}
}

// splitRetained returns the backups the policy keeps for point-in-time
// recovery, and the older ones it would delete unless permanent.
func splitRetained(p Policy, all []*archive.Sentinel, plan *Plan) (retained, candidates []*archive.Sentinel, err error) {
	r := 0
	switch p.Mode {
	case Retain:
		if p.Retain < 1 {
			return nil, nil, errors.New("retain: keep at least 1 backup (delete everything removes all)")
		}
		r = max(0, len(all)-p.Retain)
	case Before:
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
			return nil, nil, fmt.Errorf("backup %q not found (no %s); see walnut backup-list: %w", p.Name, archive.SentinelKey(p.Name), storage.ErrNotFound)
		}
	case BeforeTime:
		// As WAL-G: the oldest backup finished at or after the time is kept
		// with everything newer. With none, every backup stays: a policy
		// that would leave no backup is more likely a mistake than a wish.
		r = sort.Search(len(all), func(i int) bool { return !all[i].FinishTime.Before(p.Time) })
		if r == len(all) && r > 0 {
			plan.Notes = append(plan.Notes, fmt.Sprintf("no backup finished at or after %s: every backup is kept", p.Time.UTC().Format(time.RFC3339)))
			r = 0
		}
	case Garbage:
		r = 0
	case Everything:
		r = len(all)
	default:
		return nil, nil, fmt.Errorf("unknown delete mode %q", p.Mode)
	}
	return all[r:], all[:r], nil
}

// archiveSegmentSize is the WAL segment size every backup records; one
// archive holds one cluster, so they must agree.
func archiveSegmentSize(sentinels []*archive.Sentinel) (uint64, error) {
	var size uint64
	for _, sn := range sentinels {
		if !pgcontrol.ValidSegmentSize(sn.WALSegmentSize) {
			return 0, fmt.Errorf("%s: invalid WAL segment size %d", archive.SentinelKey(sn.Name), sn.WALSegmentSize)
		}
		if size != 0 && sn.WALSegmentSize != size {
			return 0, fmt.Errorf("%s: WAL segment size %d differs from other backups' %d; refusing to judge WAL by position",
				archive.SentinelKey(sn.Name), sn.WALSegmentSize, size)
		}
		size = sn.WALSegmentSize
	}
	return size, nil
}

// backupWAL is the WAL a backup needs to reach consistency.
func backupWAL(sn *archive.Sentinel, segSize uint64) (segRange, error) {
	tli, first, err := pgcontrol.ParseWALFileName(sn.StartSegment, segSize)
	if err != nil {
		return segRange{}, fmt.Errorf("%s: start segment: %w", archive.SentinelKey(sn.Name), err)
	}
	stopTLI, last, err := pgcontrol.ParseWALFileName(sn.StopSegment, segSize)
	if err != nil {
		return segRange{}, fmt.Errorf("%s: stop segment: %w", archive.SentinelKey(sn.Name), err)
	}
	if stopTLI != tli || last < first {
		return segRange{}, fmt.Errorf("%s: stop segment %s does not follow start segment %s", archive.SentinelKey(sn.Name), sn.StopSegment, sn.StartSegment)
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
