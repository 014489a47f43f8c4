package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// WALOptions is what wal-verify needs.
type WALOptions struct {
	Store   storage.Store
	Keyring *crypto.Keyring // reads encrypted history files; nil: none configured
	// Timeline is the timeline to follow, as --recovery-target-timeline
	// would name it; 0 follows the newest, as PostgreSQL does by default.
	Timeline uint32
	Log      *slog.Logger
}

// WALReport is what wal-verify found.
type WALReport struct {
	SegmentSize uint64 `json:"wal_segment_size"`
	// Timeline is the timeline a restore of the oldest backup follows,
	// and Path the timelines it passes through on the way.
	Timeline uint32 `json:"timeline"`
	Path     []Span `json:"path"`
	// First and Newest bound the segments checked on that path.
	First    string    `json:"first"`
	Newest   string    `json:"newest"`
	Segments int       `json:"segments"` // segments present on every path checked
	Problems []Problem `json:"problems"`
	// Missing names every WAL file a restore needs that the archive does
	// not have: segments inside gaps, and absent history files.
	Missing []string `json:"missing"`
	Backups []Reach  `json:"backups"`
	Notes   []string `json:"notes,omitempty"`

	archived map[string]bool // every file name archived, for PushCandidates
}

// Span is one timeline of a path and the segments a restore takes from
// it: From up to, but not including, the next span's From.
type Span struct {
	Timeline uint32 `json:"timeline"`
	From     string `json:"from"`
}

// Reach is how far a backup can be restored with the archive as it is.
type Reach struct {
	Name       string `json:"name"`
	Timeline   uint32 `json:"timeline"` // the backup's
	Follows    uint32 `json:"follows"`  // the timeline its recovery follows
	Restorable bool   `json:"restorable"`
	// To is the newest WAL position recovery can reach: the end of
	// LastSegment, archived at ArchivedAt (the newest commit it holds is
	// older).
	To          string    `json:"restorable_to,omitempty"`
	LastSegment string    `json:"last_segment,omitempty"`
	ArchivedAt  time.Time `json:"archived_at,omitzero"`
	Note        string    `json:"note,omitempty"`
}

// maxTimelines bounds the probe for history files, as in restore.
const maxTimelines = 1000

// WAL checks the archive's WAL by listing it, without downloading
// segments (each key carries its file's digest; backup-verify decodes
// the segments a backup needs): from each backup's start segment, along
// the timelines its recovery would follow, to the newest segment
// archived there. History files are read, since the path depends on them.
func WAL(ctx context.Context, o WALOptions) (*WALReport, error) {
	if err := archive.Require(ctx, o.Store); err != nil {
		return nil, err
	}
	id, err := archive.ReadIdentity(ctx, o.Store)
	if err != nil {
		return nil, err
	}
	backups, err := archive.ListBackups(ctx, o.Store)
	if err != nil {
		return nil, err
	}
	idx, err := listWAL(ctx, o.Store, "")
	if err != nil {
		return nil, err
	}
	rep := &WALReport{SegmentSize: id.WALSegmentSize}
	if rep.SegmentSize == 0 && len(backups) > 0 {
		rep.SegmentSize = backups[0].WALSegmentSize
	}
	if !pgcontrol.ValidSegmentSize(rep.SegmentSize) {
		return nil, fmt.Errorf("%s records no valid WAL segment size (%d), and no backup does", archive.IdentityKey, rep.SegmentSize)
	}
	w := &walCheck{o: o, idx: idx, segSize: rep.SegmentSize, rep: rep, gaps: map[uint32]map[uint64]bool{}}
	rep.archived = map[string]bool{}
	for name := range idx.byName {
		rep.archived[name] = true
	}
	for _, k := range idx.malformed {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: not a WAL key of walnut's or WAL-E's; ignored", k))
	}
	w.index()
	w.readHistories(ctx)
	if len(backups) == 0 {
		rep.Problems = append(rep.Problems, Problem{Object: archive.BackupsDir, Problem: "no backups: nothing can be restored, so WAL has nothing to be checked from; run backup-push"})
		return w.finish(), nil
	}
	w.checkProbe(backups)
	for i, sn := range backups {
		r := w.reach(sn, i == 0)
		rep.Backups = append(rep.Backups, r)
	}
	return w.finish(), nil
}

// walCheck is one wal-verify run.
type walCheck struct {
	o       WALOptions
	idx     *walIndex
	segSize uint64
	rep     *WALReport

	segs     map[uint32]map[uint64]walObject // present once, by timeline and segment number
	dups     map[uint32]map[uint64]bool      // present more than once
	newest   map[uint32]uint64               // newest segment number per timeline
	withWAL  map[uint32]bool                 // timelines holding any file (segment, partial, history)
	history  map[uint32][]pgcontrol.HistoryEntry
	histBad  map[uint32]bool // present but unreadable
	gaps     map[uint32]map[uint64]bool
	counted  map[string]bool // segments counted in rep.Segments
	problems problems
}

// index sorts the listing into segments by position, and reports names
// archived more than once anywhere: wal-fetch fails on each of them.
func (w *walCheck) index() {
	w.segs = map[uint32]map[uint64]walObject{}
	w.dups = map[uint32]map[uint64]bool{}
	w.newest = map[uint32]uint64{}
	w.withWAL = map[uint32]bool{}
	w.counted = map[string]bool{}
	for name, objs := range w.idx.byName {
		if d := duplicate(objs); d != "" {
			w.problems.add(archive.WALKeyPrefix(name)+"*", "", "%s", d)
		}
		var tli uint32
		if _, err := fmt.Sscanf(name[:min(8, len(name))], "%08X", &tli); err == nil {
			w.withWAL[tli] = true
		}
		if !pgcontrol.IsWALFileName(name) {
			continue
		}
		tli, seg, err := pgcontrol.ParseWALFileName(name, w.segSize)
		if err != nil {
			w.rep.Notes = append(w.rep.Notes, fmt.Sprintf("%s: %v; ignored", objs[0].Key, err))
			continue
		}
		if w.segs[tli] == nil {
			w.segs[tli], w.dups[tli] = map[uint64]walObject{}, map[uint64]bool{}
		}
		if len(objs) > 1 {
			w.dups[tli][seg] = true
		} else {
			w.segs[tli][seg] = objs[0]
		}
		if cur, ok := w.newest[tli]; !ok || seg > cur {
			w.newest[tli] = seg
		}
	}
}

// readHistories reads every history file in the archive: the timelines
// a restore follows come from them, and one PostgreSQL cannot read stops
// recovery.
func (w *walCheck) readHistories(ctx context.Context) {
	w.history = map[uint32][]pgcontrol.HistoryEntry{}
	w.histBad = map[uint32]bool{}
	for name, objs := range w.idx.byName {
		if !pgcontrol.IsHistoryFileName(name) {
			continue
		}
		var tli uint32
		fmt.Sscanf(name, "%08X", &tli)
		if len(objs) != 1 {
			w.histBad[tli] = true // reported as a duplicate
			continue
		}
		entries, err := readHistory(ctx, w.o.Store, w.o.Keyring, objs[0])
		if err != nil {
			w.histBad[tli] = true
			w.problems.add(objs[0].Key, "", "unreadable history file: %s", readFailure(err))
			continue
		}
		if err := checkHistory(tli, entries); err != nil {
			w.histBad[tli] = true
			w.problems.add(objs[0].Key, "", "%v", err)
			continue
		}
		w.history[tli] = entries
	}
}

func readHistory(ctx context.Context, s storage.Store, kr *crypto.Keyring, o walObject) ([]pgcontrol.HistoryEntry, error) {
	rc, err := archive.OpenDecoded(ctx, s, o.Key, kr)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h := sha256.New()
	entries, err := pgcontrol.ParseHistory(io.TeeReader(rc, h))
	if err == nil {
		_, err = io.Copy(h, rc)
	}
	if err != nil {
		return nil, err
	}
	if got := hex.EncodeToString(h.Sum(nil))[:archive.DigestLen]; got != o.Digest {
		return nil, fmt.Errorf("content digest %s does not match the key's %s: the object is corrupt", got, o.Digest)
	}
	return entries, nil
}

func checkHistory(tli uint32, entries []pgcontrol.HistoryEntry) error {
	if len(entries) == 0 {
		return errors.New("a history file without entries")
	}
	if last := entries[len(entries)-1].ParentTLI; last >= tli {
		return fmt.Errorf("lists timeline %d as a parent of timeline %d", last, tli)
	}
	return nil
}

// checkProbe finds what PostgreSQL's search for the newest timeline
// misses: it reads the history files after the backup's timeline one by
// one and stops at the first absent, so WAL of any later timeline is
// never reached.
func (w *walCheck) checkProbe(backups []*archive.Sentinel) {
	newestWithWAL := uint32(0)
	for tli := range w.withWAL {
		newestWithWAL = max(newestWithWAL, tli)
	}
	from := backups[0].Timeline
	for _, sn := range backups {
		from = min(from, sn.Timeline)
	}
	for tli := from + 1; tli <= newestWithWAL; tli++ {
		if _, ok := w.idx.byName[pgcontrol.HistoryFileName(tli)]; ok {
			continue
		}
		w.missing(pgcontrol.HistoryFileName(tli))
		w.problems.add(pgcontrol.HistoryFileName(tli), "", "history file missing: a restore looks for the newest timeline history file by history file, stops before timeline %d, and never reaches the WAL archived on timelines %d to %d", tli, tli, newestWithWAL)
		return
	}
}

func (w *walCheck) missing(name string) {
	w.rep.Missing = append(w.rep.Missing, name)
}

// target is the timeline recovery from timeline tli follows.
func (w *walCheck) target(tli uint32) uint32 {
	if w.o.Timeline != 0 {
		return w.o.Timeline
	}
	t := tli
	for next := tli + 1; next <= tli+maxTimelines; next++ {
		if _, ok := w.idx.byName[pgcontrol.HistoryFileName(next)]; !ok {
			break
		}
		t = next
	}
	return t
}

// span is one timeline of a path, from segment begin on.
type span struct {
	tli   uint32
	begin uint64
}

// path returns the timelines recovery takes to target, oldest first,
// with the segment each begins at (PostgreSQL reads segment N from the
// newest timeline of the path that began at or before N), and why not
// if target's history cannot be read.
func (w *walCheck) path(target uint32) ([]span, string) {
	if target == 1 {
		return []span{{tli: 1}}, ""
	}
	entries, ok := w.history[target]
	if !ok {
		name := pgcontrol.HistoryFileName(target)
		if w.histBad[target] {
			return nil, name + " is unreadable"
		}
		return nil, name + " is missing"
	}
	out := make([]span, 0, len(entries)+1)
	begin := uint64(0)
	for _, e := range entries {
		out = append(out, span{tli: e.ParentTLI, begin: begin})
		begin = pgcontrol.SegmentNumber(e.SwitchPoint, w.segSize)
	}
	return append(out, span{tli: target, begin: begin}), ""
}

// reach walks the WAL a restore of sn reads, from its start segment along
// the path to its target timeline, up to the newest segment archived on
// that path; every segment missing on the way is a gap.
func (w *walCheck) reach(sn *archive.Sentinel, oldest bool) Reach {
	r := Reach{Name: sn.Name, Timeline: sn.Timeline}
	tli, start, err1 := pgcontrol.ParseWALFileName(sn.StartSegment, w.segSize)
	_, stop, err2 := pgcontrol.ParseWALFileName(sn.StopSegment, w.segSize)
	end, err3 := pgcontrol.ParseLSN(sn.FinishLSN)
	if err := errors.Join(err1, err2, err3); err != nil {
		w.problems.add(archive.SentinelKey(sn.Name), "", "unreadable WAL positions: %v", err)
		r.Note = "its WAL positions cannot be read"
		return r
	}
	target := w.target(tli)
	spans, why := w.path(target)
	if why != "" {
		if w.o.Timeline != 0 {
			w.missingHistory(target, why)
		}
		r.Note = fmt.Sprintf("%s: following timeline %d only", why, tli)
		spans, target = []span{{tli: tli}}, tli
	}
	k := -1
	for i, s := range spans {
		if s.tli == tli {
			k = i
		}
	}
	switch {
	case k < 0:
		r.Note = fmt.Sprintf("timeline %d does not descend from this backup's timeline %d: restore it with --recovery-target-timeline current", target, tli)
		spans, target, k = []span{{tli: tli}}, tli, 0
	case k+1 < len(spans) && w.switchPoint(target, tli) < end:
		r.Note = fmt.Sprintf("timeline %d branched from timeline %d at %s, before this backup ended at %s: restore it with --recovery-target-timeline current", spans[k+1].tli, tli, w.switchPoint(target, tli), end)
		spans, target, k = []span{{tli: tli}}, tli, 0
	}
	spans = spans[k:]
	r.Follows = target
	if oldest {
		w.rep.Timeline = target
		for _, s := range spans {
			from := max(s.begin, start)
			w.rep.Path = append(w.rep.Path, Span{Timeline: s.tli, From: pgcontrol.WALFileName(s.tli, from, w.segSize)})
		}
		w.rep.First = sn.StartSegment
	}

	// The newest segment on the path: the walk ends there.
	lastSpan, lastSeg, found := -1, uint64(0), false
	for i, s := range spans {
		n, ok := w.newest[s.tli]
		if !ok {
			continue
		}
		hi := n
		if i+1 < len(spans) {
			if spans[i+1].begin == 0 {
				continue
			}
			hi = min(n, spans[i+1].begin-1)
		}
		if hi >= max(s.begin, start) {
			lastSpan, lastSeg, found = i, hi, true
		}
	}
	if oldest && found {
		w.rep.Newest = pgcontrol.WALFileName(spans[lastSpan].tli, lastSeg, w.segSize)
	}

	broken := false
	for i, s := range spans {
		if !found || i > lastSpan {
			break
		}
		from := max(s.begin, start)
		to := lastSeg
		if i < lastSpan {
			if spans[i+1].begin == 0 {
				continue
			}
			to = spans[i+1].begin - 1
		}
		for seg := from; seg <= to; seg++ {
			obj, ok := w.segs[s.tli][seg]
			if !ok {
				broken = true
				if !w.dups[s.tli][seg] {
					w.gap(s.tli, seg)
				}
				continue
			}
			if !w.counted[obj.Name] {
				w.counted[obj.Name] = true
				w.rep.Segments++
			}
			if !broken {
				r.LastSegment = obj.Name
				r.To = pgcontrol.SegmentStart(seg+1, w.segSize).String()
				r.ArchivedAt = obj.ModTime
				r.Restorable = i > 0 || seg >= stop
			}
		}
	}
	// Segments up to the backup's stop are needed even when nothing after
	// the backup was ever archived.
	if !r.Restorable {
		for seg := start; seg <= stop; seg++ {
			if _, ok := w.segs[tli][seg]; !ok && !w.dups[tli][seg] {
				w.gap(tli, seg)
			}
		}
	}
	if !r.Restorable && r.Note == "" {
		r.Note = fmt.Sprintf("the WAL from %s to %s, which it needs, is not all archived", sn.StartSegment, sn.StopSegment)
	}
	return r
}

// switchPoint is where timeline tli ends on the way to target.
func (w *walCheck) switchPoint(target, tli uint32) pgcontrol.LSN {
	for _, e := range w.history[target] {
		if e.ParentTLI == tli {
			return e.SwitchPoint
		}
	}
	return 0
}

func (w *walCheck) missingHistory(tli uint32, why string) {
	name := pgcontrol.HistoryFileName(tli)
	if !w.histBad[tli] {
		w.missing(name)
	}
	w.problems.add(name, "", "%s: a restore cannot follow timeline %d", why, tli)
}

func (w *walCheck) gap(tli uint32, seg uint64) {
	if w.gaps[tli] == nil {
		w.gaps[tli] = map[uint64]bool{}
	}
	w.gaps[tli][seg] = true
}

// finish turns the gaps into problems, one per run of missing segments,
// and sorts the report.
func (w *walCheck) finish() *WALReport {
	tlis := make([]uint32, 0, len(w.gaps))
	for tli := range w.gaps {
		tlis = append(tlis, tli)
	}
	sort.Slice(tlis, func(i, j int) bool { return tlis[i] < tlis[j] })
	for _, tli := range tlis {
		segs := make([]uint64, 0, len(w.gaps[tli]))
		for s := range w.gaps[tli] {
			segs = append(segs, s)
		}
		sort.Slice(segs, func(i, j int) bool { return segs[i] < segs[j] })
		for i := 0; i < len(segs); {
			j := i
			for j+1 < len(segs) && segs[j+1] == segs[j]+1 {
				j++
			}
			first := pgcontrol.WALFileName(tli, segs[i], w.segSize)
			last := pgcontrol.WALFileName(tli, segs[j], w.segSize)
			for s := segs[i]; s <= segs[j]; s++ {
				w.missing(pgcontrol.WALFileName(tli, s, w.segSize))
			}
			if i == j {
				w.problems.add(first, "", "missing from the archive: recovery stops before it")
			} else {
				w.problems.add(first, "", "missing from the archive with every segment to %s (%d segments): recovery stops before them", last, j-i+1)
			}
			i = j + 1
		}
	}
	w.rep.Problems = w.problems.sorted()
	if w.rep.Problems == nil {
		w.rep.Problems = []Problem{}
	}
	sort.Strings(w.rep.Missing)
	w.rep.Missing = compactStrings(w.rep.Missing)
	if w.rep.Missing == nil {
		w.rep.Missing = []string{}
	}
	sort.Strings(w.rep.Notes)
	return w.rep
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
