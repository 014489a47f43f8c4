package verify

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/tarball"
)

// BackupOptions is what backup-verify needs.
type BackupOptions struct {
	Store storage.Store
	// Names are the backups to check, by name or LATEST; All checks every
	// backup instead.
	Names       []string
	All         bool
	Keyring     *crypto.Keyring // decrypts encrypted objects; nil: none configured
	Concurrency int             // objects decoded at once
	Log         *slog.Logger
}

// BackupResult is what backup-verify found of one backup.
type BackupResult struct {
	Name        string    `json:"name"`
	Partitions  int       `json:"partitions"`
	Files       int       `json:"files"`        // regular files found whole
	Bytes       int64     `json:"bytes"`        // their size
	WALSegments int       `json:"wal_segments"` // segments of the backup's WAL range found whole
	FirstWAL    string    `json:"wal_first"`
	LastWAL     string    `json:"wal_last"`
	Problems    []Problem `json:"problems"`
}

// OK reports whether the backup restores as far as decoding can tell.
func (r *BackupResult) OK() bool { return len(r.Problems) == 0 }

// Backups checks each backup named, or all: every object of it decodes,
// every file matches its manifest entry, pg_control.tar and
// backup_manifest are whole and agree with the sentinel, and every WAL
// segment from the backup's start to its stop is archived once, decodes
// and matches its digest. Problems are results, not errors: the error is
// for an archive that cannot be read at all.
func Backups(ctx context.Context, o BackupOptions) ([]*BackupResult, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if err := archive.Require(ctx, o.Store); err != nil {
		return nil, err
	}
	var list []*archive.Sentinel
	if o.All {
		all, err := archive.ListBackups(ctx, o.Store)
		if err != nil {
			return nil, err
		}
		if len(all) == 0 {
			return nil, archive.ErrNoBackups
		}
		list = all
	} else {
		seen := map[string]bool{}
		for _, n := range o.Names {
			sn, err := archive.ResolveBackup(ctx, o.Store, n)
			if err != nil {
				return nil, err
			}
			if !seen[sn.Name] {
				seen[sn.Name] = true
				list = append(list, sn)
			}
		}
	}
	indexes := map[uint32]*walIndex{} // by timeline, listed once for every backup on it
	var out []*BackupResult
	for _, sn := range list {
		if sn.IsWALE() {
			res := checkWALEBackup(ctx, o, sn)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			out = append(out, res)
			continue
		}
		idx, ok := indexes[sn.Timeline]
		if !ok {
			var err error
			if idx, err = listWAL(ctx, o.Store, timelineNames(sn.Timeline)); err != nil {
				return nil, err
			}
			indexes[sn.Timeline] = idx
		}
		res := checkBackup(ctx, o, sn, idx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		o.Log.Debug("backup checked", "name", sn.Name, "problems", len(res.Problems))
		out = append(out, res)
	}
	return out, nil
}

// backupCheck is one backup being checked by several workers.
type backupCheck struct {
	o        BackupOptions
	sn       *archive.Sentinel
	m        *archive.Manifest // nil: files.json unreadable
	problems problems

	mu    sync.Mutex
	files int
	bytes int64
	wal   int
	// chunksLeft counts, per chunked file (by each chunk's entry name),
	// the chunks not yet found whole: the file counts once they all are.
	chunkOf    map[string]string
	chunksLeft map[string]int
}

func checkBackup(ctx context.Context, o BackupOptions, sn *archive.Sentinel, idx *walIndex) *BackupResult {
	b := &backupCheck{o: o, sn: sn}
	res := &BackupResult{Name: sn.Name, Partitions: sn.Partitions}

	m, err := archive.ReadManifest(ctx, o.Store, sn.ManifestKey, o.Keyring)
	if err != nil {
		b.problems.add(sn.ManifestKey, "", "%s; no file of the backup could be checked against it", readFailure(unwrapManifest(err, sn.ManifestKey)))
	} else {
		b.m = m
		b.checkManifest()
	}
	byPart := map[int]map[string]tarball.File{}
	if b.m != nil {
		// Entries by tar name: each chunk of a chunked file is checked in
		// the partition that holds it.
		if byPart, err = tarball.ByPartition(b.m.Entries()); err != nil {
			b.problems.add(sn.ManifestKey, "", "%v; no file of the backup could be checked against it", err)
			b.m, byPart = nil, map[int]map[string]tarball.File{}
		}
	}
	if b.m != nil {
		b.chunkOf, b.chunksLeft = map[string]string{}, map[string]int{}
		for _, f := range b.m.Files {
			for _, c := range f.Chunks {
				b.chunkOf[tarball.ChunkName(f.Path, c.Offset)] = f.Path
			}
			b.chunksLeft[f.Path] = len(f.Chunks)
		}
	}

	// Every object is its own job, partitions and WAL segments alike, so a
	// large backup keeps every worker busy until its last object.
	var jobs []func(context.Context)
	ext := archive.BackupExt(sn)
	for n := 1; n <= sn.Partitions; n++ {
		key := archive.PartitionKey(sn.Name, n, ext)
		jobs = append(jobs, func(ctx context.Context) { b.checkPartition(ctx, key, byPart[n]) })
	}
	jobs = append(jobs, func(ctx context.Context) { b.checkControl(ctx, byPart[archive.ControlPartition]) })
	if sn.PGManifestKey != "" {
		jobs = append(jobs, func(ctx context.Context) { b.checkPGManifest(ctx) })
	}
	if sn.IsDelta() {
		b.checkChain(ctx)
	}
	segs, err := b.walRange(idx)
	if err != nil {
		b.problems.add(archive.SentinelKey(sn.Name), "", "%v: its WAL range cannot be checked", err)
	}
	for _, s := range segs {
		jobs = append(jobs, func(ctx context.Context) { b.checkWAL(ctx, s) })
	}
	if len(segs) > 0 {
		res.FirstWAL, res.LastWAL = segs[0].name, segs[len(segs)-1].name
	}
	runJobs(ctx, o.Concurrency, jobs)

	res.Files, res.Bytes, res.WALSegments = b.files, b.bytes, b.wal
	res.Problems = b.problems.sorted()
	return res
}

// unwrapManifest drops the "read manifest KEY:" that ReadManifest puts in
// front, since the report names the key already.
func unwrapManifest(err error, key string) error {
	if s, ok := strings.CutPrefix(err.Error(), "read manifest "+key+": "); ok {
		if errors.Is(err, archive.ErrNoPrivateKey) {
			return archive.ErrNoPrivateKey
		}
		return errors.New(s)
	}
	return err
}

func runJobs(ctx context.Context, workers int, jobs []func(context.Context)) {
	ch := make(chan func(context.Context))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for job := range ch {
				job(ctx)
			}
		})
	}
	for _, job := range jobs {
		if ctx.Err() != nil {
			break
		}
		ch <- job
	}
	close(ch)
	wg.Wait()
}

// checkManifest checks what files.json says against the sentinel: a
// manifest that lacks what every base backup has would restore into a
// directory that cannot start.
func (b *backupCheck) checkManifest() {
	key := b.sn.ManifestKey
	if b.m.Name != b.sn.Name {
		b.problems.add(key, "", "names backup %q: it belongs to another backup", b.m.Name)
	}
	need := map[string]bool{archive.ControlFile: false, "backup_label": false, "PG_VERSION": false}
	for _, f := range b.m.Files {
		if _, ok := need[f.Path]; ok && f.Type == tarball.TypeFile {
			need[f.Path] = true
		}
		if f.Partition < 0 || f.Partition > b.sn.Partitions {
			b.problems.add(key, f.Path, "listed in partition %d, but the backup has %d", f.Partition, b.sn.Partitions)
		}
		// A chunked file: its chunks must cover it exactly and their
		// CRC32Cs combine to the file's; each chunk's own CRC32C is
		// checked in its partition like a file.
		if err := tarball.CheckChunks(f); err != nil {
			b.problems.add(key, f.Path, "%v", err)
		}
		for _, c := range f.Chunks {
			if c.Partition < 1 || c.Partition > b.sn.Partitions {
				b.problems.add(key, f.Path, "chunk at offset %d listed in partition %d, but the backup has %d", c.Offset, c.Partition, b.sn.Partitions)
			}
		}
	}
	for _, p := range []string{archive.ControlFile, "backup_label", "PG_VERSION"} {
		if !need[p] {
			b.problems.add(key, "", "lists no %s: not a complete base backup", p)
		}
	}
}

// checkTar decodes one tar object and checks it against the manifest
// entries it should hold (nil when the manifest is unreadable: then only
// the decoding is checked). It returns the entries found, by path, and
// whether the object could be read to its end.
func (b *backupCheck) checkTar(ctx context.Context, key string, expect map[string]tarball.File) (map[string]tarball.File, bool) {
	rc, err := archive.OpenDecoded(ctx, b.o.Store, key, b.o.Keyring)
	if err != nil {
		b.objectFailed(key, expect, err)
		return nil, false
	}
	defer rc.Close()
	return b.checkTarStream(key, storage.ContextReader(ctx, rc), expect)
}

func (b *backupCheck) checkTarStream(key string, r io.Reader, expect map[string]tarball.File) (map[string]tarball.File, bool) {
	bad := func(path string, err error) {
		if b.m == nil && errors.Is(err, tarball.ErrCorrupt) {
			return // no manifest to compare with: reported once already
		}
		b.problems.add(key, path, "%v", err)
	}
	got, err := tarball.Check(r, expect, bad)
	found := map[string]tarball.File{}
	for _, f := range got {
		found[f.Path] = f
	}
	if err != nil {
		b.objectFailed(key, missing(expect, found), fmt.Errorf("decode: %w", err))
		return found, false
	}
	for _, p := range sortedPaths(missing(expect, found)) {
		b.problems.add(key, p, "listed in the manifest, not in the object")
	}
	b.mu.Lock()
	for _, f := range got {
		if w, ok := expect[f.Path]; ok && f.Type == tarball.TypeFile && w.CRC32C == f.CRC32C && w.Size == f.Size {
			b.bytes += f.Size
			if file, ok := b.chunkOf[f.Path]; ok {
				if b.chunksLeft[file]--; b.chunksLeft[file] > 0 {
					continue
				}
			}
			b.files++
		}
	}
	b.mu.Unlock()
	return found, true
}

// objectFailed reports an object that could not be read to its end, and
// how many of the files it holds were therefore not checked.
func (b *backupCheck) objectFailed(key string, unchecked map[string]tarball.File, err error) {
	msg := readFailure(err)
	if errors.Is(err, storage.ErrNotFound) {
		msg = "missing from the archive"
	}
	if n := len(unchecked); n > 0 {
		msg += fmt.Sprintf("; %d of the entries the manifest lists in it were not checked", n)
	}
	b.problems.add(key, "", "%s", msg)
}

func missing(expect, found map[string]tarball.File) map[string]tarball.File {
	out := map[string]tarball.File{}
	for p, f := range expect {
		if _, ok := found[p]; !ok {
			out[p] = f
		}
	}
	return out
}

func sortedPaths(m map[string]tarball.File) []string {
	return slices.Sorted(maps.Keys(m))
}

func (b *backupCheck) checkPartition(ctx context.Context, key string, expect map[string]tarball.File) {
	if expect == nil && b.m != nil {
		expect = map[string]tarball.File{} // an empty partition: nil would check nothing
	}
	b.checkTar(ctx, key, expect)
}

// maxControlObject bounds pg_control.tar, which is read into memory: it
// holds pg_control (8 KiB), backup_label and tablespace_map.
const maxControlObject = 16 << 20

// checkControl checks pg_control.tar like a partition, then what it
// holds: pg_control whole (its CRC) and of this cluster, and a
// backup_label that starts where the sentinel says the backup started.
func (b *backupCheck) checkControl(ctx context.Context, expect map[string]tarball.File) {
	key := b.sn.ControlKey
	if expect == nil && b.m != nil {
		expect = map[string]tarball.File{}
	}
	rc, err := archive.OpenDecoded(ctx, b.o.Store, key, b.o.Keyring)
	if err != nil {
		b.objectFailed(key, expect, err)
		return
	}
	data, err := io.ReadAll(io.LimitReader(storage.ContextReader(ctx, rc), maxControlObject+1))
	rc.Close()
	if err == nil && len(data) > maxControlObject {
		err = fmt.Errorf("larger than %d bytes: not a pg_control.tar", maxControlObject)
	}
	if err != nil {
		b.objectFailed(key, expect, fmt.Errorf("decode: %w", err))
		return
	}
	found, ok := b.checkTarStream(key, bytes.NewReader(data), expect)
	if !ok {
		return
	}
	contents := tarContents(data, archive.ControlFile, "backup_label")
	if _, listed := found[archive.ControlFile]; listed {
		b.checkControlFile(key, contents[archive.ControlFile])
	}
	if _, listed := found["backup_label"]; listed {
		b.checkLabel(key, contents["backup_label"])
	}
}

// tarContents returns the content of the named files of a tar in memory.
func tarContents(data []byte, names ...string) map[string][]byte {
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			return out
		}
		for _, n := range names {
			if hdr.Name == n && hdr.Typeflag == tar.TypeReg {
				if b, err := io.ReadAll(tr); err == nil {
					out[n] = b
				}
			}
		}
	}
}

func (b *backupCheck) checkControlFile(key string, data []byte) {
	cd, err := pgcontrol.ParseControlFile(data)
	if err != nil {
		b.problems.add(key, archive.ControlFile, "%v", err)
		return
	}
	if sysid := strconv.FormatUint(cd.SystemIdentifier, 10); b.sn.SystemIdentifier != "" && sysid != b.sn.SystemIdentifier {
		b.problems.add(key, archive.ControlFile, "system identifier %s, the backup's sentinel says %s: another cluster's pg_control", sysid, b.sn.SystemIdentifier)
	}
	if b.sn.WALSegmentSize != 0 && uint64(cd.WALSegmentSize) != b.sn.WALSegmentSize {
		b.problems.add(key, archive.ControlFile, "WAL segment size %d, the sentinel says %d", cd.WALSegmentSize, b.sn.WALSegmentSize)
	}
}

var labelStart = regexp.MustCompile(`(?m)^START WAL LOCATION: ([0-9A-Fa-f]+/[0-9A-Fa-f]+) \(file ([0-9A-F]{24})\)$`)

func (b *backupCheck) checkLabel(key string, data []byte) {
	m := labelStart.FindSubmatch(data)
	if m == nil {
		b.problems.add(key, "backup_label", "has no START WAL LOCATION line: not a backup_label")
		return
	}
	got, err := pgcontrol.ParseLSN(string(m[1]))
	want, werr := pgcontrol.ParseLSN(b.sn.StartLSN)
	if err != nil || werr != nil || got != want || string(m[2]) != b.sn.StartSegment {
		b.problems.add(key, "backup_label", "starts at %s (file %s), the sentinel at %s (file %s): another backup's label", m[1], m[2], b.sn.StartLSN, b.sn.StartSegment)
	}
}

// checkPGManifest reads backup_manifest to its end and checks its own
// checksum (the SHA-256 of everything before its last line), which
// pg_verifybackup checks first, and that it is JSON.
func (b *backupCheck) checkPGManifest(ctx context.Context) {
	key := b.sn.PGManifestKey
	rc, err := archive.OpenDecoded(ctx, b.o.Store, key, b.o.Keyring)
	if err != nil {
		b.objectFailed(key, nil, err)
		return
	}
	defer rc.Close()
	sum := &manifestSum{h: sha256.New()}
	dec := json.NewDecoder(io.TeeReader(storage.ContextReader(ctx, rc), sum))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.problems.add(key, "", "decode: %v", err)
			return
		}
	}
	if err := archive.ReadToEnd(rc); err != nil {
		b.problems.add(key, "", "decode: %v", err)
		return
	}
	if err := sum.verify(); err != nil {
		b.problems.add(key, "", "%v", err)
	}
}

// manifestSum hashes a PostgreSQL backup manifest line by line as it is
// read, up to the Manifest-Checksum line, and remembers that line.
type manifestSum struct {
	h       hash.Hash
	line    []byte
	claimed string
	after   bool // past the checksum line: anything but blanks is wrong
	extra   bool
}

var checksumLine = regexp.MustCompile(`^"Manifest-Checksum": "([0-9a-f]{64})"\}\s*$`)

func (m *manifestSum) Write(p []byte) (int, error) {
	for _, c := range p {
		m.line = append(m.line, c)
		if c == '\n' {
			m.endLine()
		}
	}
	return len(p), nil
}

func (m *manifestSum) endLine() {
	switch {
	case m.after:
		if len(bytes.TrimSpace(m.line)) > 0 {
			m.extra = true
		}
	case bytes.HasPrefix(m.line, []byte(`"Manifest-Checksum"`)):
		if sm := checksumLine.FindSubmatch(m.line); sm != nil {
			m.claimed = string(sm[1])
		}
		m.after = true
	default:
		m.h.Write(m.line)
	}
	m.line = m.line[:0]
}

func (m *manifestSum) verify() error {
	if len(m.line) > 0 {
		m.endLine()
	}
	if m.claimed == "" || m.extra {
		return errors.New("no Manifest-Checksum line at its end: truncated or not a backup manifest")
	}
	got := hex.EncodeToString(m.h.Sum(nil))
	if got != m.claimed {
		return fmt.Errorf("Manifest-Checksum %s, content hashes to %s: the manifest was altered", m.claimed, got)
	}
	return nil
}

// walSeg is one segment of a backup's WAL range.
type walSeg struct {
	name string
	objs []walObject
}

// walRange lists the segments from the backup's start to its stop, with
// what the archive holds of each.
func (b *backupCheck) walRange(idx *walIndex) ([]walSeg, error) {
	segSize := b.sn.WALSegmentSize
	if !pgcontrol.ValidSegmentSize(segSize) {
		return nil, fmt.Errorf("WAL segment size %d", segSize)
	}
	tli, first, err := pgcontrol.ParseWALFileName(b.sn.StartSegment, segSize)
	if err != nil {
		return nil, err
	}
	_, last, err := pgcontrol.ParseWALFileName(b.sn.StopSegment, segSize)
	if err != nil {
		return nil, err
	}
	if last < first {
		return nil, fmt.Errorf("stop segment %s before start segment %s", b.sn.StopSegment, b.sn.StartSegment)
	}
	var out []walSeg
	for seg := first; seg <= last; seg++ {
		name := pgcontrol.WALFileName(tli, seg, segSize)
		out = append(out, walSeg{name: name, objs: idx.byName[name]})
	}
	return out, nil
}

func (b *backupCheck) checkWAL(ctx context.Context, s walSeg) {
	switch {
	case len(s.objs) == 0:
		b.problems.add(archive.WALKeyPrefix(s.name)+"*", "", "missing from the archive: backup %s needs every segment from %s to %s", b.sn.Name, b.sn.StartSegment, b.sn.StopSegment)
		return
	case len(s.objs) > 1:
		b.problems.add(archive.WALKeyPrefix(s.name)+"*", "", "%s", duplicate(s.objs))
		return
	}
	o := s.objs[0]
	facts, err := checkSegment(ctx, b.o.Store, b.o.Keyring, o, b.sn.WALSegmentSize)
	if err != nil {
		b.problems.add(o.Key, "", "%s", readFailure(err))
		return
	}
	if sysid := strconv.FormatUint(facts.sysid, 10); b.sn.SystemIdentifier != "" && sysid != b.sn.SystemIdentifier {
		b.problems.add(o.Key, "", "written by the cluster with system identifier %s, the backup's is %s", sysid, b.sn.SystemIdentifier)
		return
	}
	b.mu.Lock()
	b.wal++
	b.mu.Unlock()
}
