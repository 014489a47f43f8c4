package basebackup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/tarball"
)

// Options is what backup-push needs.
type Options struct {
	Store          storage.Store
	Codec          compression.Codec
	Encrypt        *crypto.Recipients // nil: stored unencrypted
	DataDir        string
	ConnString     string // libpq keyword/value string; holds the password, never log it
	FastCheckpoint bool
	PartitionSize  int64 // uncompressed bytes per partition
	// ChunkSize: files larger than this are stored in chunks of this
	// size, which any worker may pack (0: DefaultChunkSize).
	ChunkSize   int64
	Concurrency int // partitions compressed and uploaded at once
	// ArchiveTimeout bounds the wait for the WAL the backup needs to reach
	// the archive; without it the backup is not restorable.
	ArchiveTimeout time.Duration
	Log            *slog.Logger
	Progress       archive.Progress // nil: none
	// Delta stores only what changed since the newest backup of the
	// cluster, unless its chain already has DeltaMaxSteps deltas (0:
	// DefaultDeltaMaxSteps).
	Delta         bool
	DeltaMaxSteps int
}

// withDefaults fills in what the caller left zero.
func withDefaults(o Options) Options {
	if o.PartitionSize <= 0 {
		o.PartitionSize = DefaultPartitionSize
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ArchiveTimeout <= 0 {
		o.ArchiveTimeout = DefaultArchiveTimeout
	}
	if o.DeltaMaxSteps <= 0 {
		o.DeltaMaxSteps = DefaultDeltaMaxSteps
	}
	return o
}

// DefaultArchiveTimeout is how long backup-push waits for its WAL.
const DefaultArchiveTimeout = 10 * time.Minute

// DefaultPartitionSize keeps partitions big enough that per-object costs
// vanish and small enough that a failed upload loses little.
const DefaultPartitionSize = 1 << 30

// DefaultChunkSize splits a 1 GiB relation segment into 16 pieces: enough
// that two to eight workers share one file evenly, few enough that the
// per-entry cost (a tar header, a manifest line) is nothing.
const DefaultChunkSize = 64 << 20

// MinChunkSize keeps a chunk many pages long, so a misplaced unit cannot
// turn a backup into millions of tar entries.
const MinChunkSize = 1 << 20

// Push takes a non-exclusive base backup of the running server whose
// data directory is DataDir and stores it under backups/<name>/. The
// sentinel is written last, so a backup interrupted at any point is never
// listed.
func Push(ctx context.Context, o Options) (_ *archive.Sentinel, err error) {
	o = withDefaults(o)
	log := o.Log
	enc := archive.Encoding{Codec: o.Codec, To: o.Encrypt}
	dataDir, err := checkDataDir(o.DataDir)
	if err != nil {
		return nil, err
	}
	sess, err := connect(ctx, o.ConnString)
	if err != nil {
		return nil, err
	}
	defer sess.close(context.WithoutCancel(ctx))
	facts, err := sess.facts(ctx)
	if err != nil {
		return nil, err
	}
	if err := sameDir(dataDir, facts.DataDir); err != nil {
		return nil, err
	}
	if facts.ArchiveMode == "off" && facts.Streamers == 0 {
		// With a walsender, walnut wal-receive may be the one archiving;
		// the wait for the backup's WAL in this archive below tells.
		return nil, errors.New("archive_mode is off and no walnut wal-receive streams from this server: a base backup cannot be restored without the WAL archive; set archive_mode = on and archive_command = 'walnut wal-push %p', or run walnut wal-receive")
	}
	if err := archive.CheckIdentity(ctx, o.Store, facts.SystemID, sess.version/10000, facts.WALSegmentSize); err != nil {
		return nil, err
	}

	startTime := time.Now().UTC()
	label := "walnut " + startTime.Format(time.RFC3339)
	startLSN, tli, err := sess.start(ctx, label, o.FastCheckpoint)
	if err != nil {
		return nil, err
	}
	sn := newSentinel(startTime, startLSN, tli, facts, sess.version, enc)
	sn.DataDir = dataDir
	seg := sn.WALSegmentSize

	if _, err := o.Store.Stat(ctx, archive.SentinelKey(sn.Name)); err == nil {
		return nil, fmt.Errorf("backup %s already exists", sn.Name)
	}
	var since *pgcontrol.LSN
	var baseDirs []string
	if o.Delta {
		base, err := chooseBase(ctx, o.Store, sn, o.DeltaMaxSteps, log)
		if err != nil {
			return nil, err
		}
		if base != nil {
			lsn, _ := pgcontrol.ParseLSN(base.StartLSN) // checked by chooseBase
			since = &lsn
			sn.DeltaBase, sn.DeltaDepth, sn.DeltaBaseLSN = base.Name, base.DeltaDepth+1, base.StartLSN
			baseDirs = base.DatabaseDirs
			log.Info("delta backup", "base", base.Name, "base_start_lsn", base.StartLSN, "step", sn.DeltaDepth)
		}
	}

	defer func() {
		if err != nil {
			removeParts(ctx, o, sn.Name)
		}
	}()
	if err := putRunning(ctx, o, sn); err != nil {
		return nil, err
	}
	log.Info("backup started", "name", sn.Name, "start_lsn", sn.StartLSN, "timeline", tli)
	p := &packer{store: o.Store, enc: enc, name: sn.Name, limit: o.PartitionSize, chunk: o.ChunkSize, log: log, progress: o.Progress, delta: since,
		baseDirs: map[string]bool{"global": true}}
	for _, d := range baseDirs {
		p.baseDirs[d] = true
	}
	versionDir := fmt.Sprintf("PG_%d_", sess.version/10000)
	if err := p.run(ctx, dataDir, facts.Tablespaces, versionDir, o.Concurrency); err != nil {
		return nil, err
	}

	stopLSN, labelFile, spcmap, err := sess.stop(ctx)
	if err != nil {
		return nil, err
	}
	stopSeg := setStop(sn, stopLSN)

	if err := waitArchived(ctx, o.Store, tli, pgcontrol.SegmentNumber(startLSN, seg), stopSeg, seg, o.ArchiveTimeout, log); err != nil {
		return nil, err
	}
	ctl, err := os.ReadFile(filepath.Join(dataDir, archive.ControlFile))
	if err != nil {
		return nil, err
	}
	if err := p.seal(ctx, sn, facts.Tablespaces, labelFile, spcmap, ctl); err != nil {
		return nil, err
	}
	return sn, nil
}

// seal stores what makes a packed backup whole, in the order that keeps
// it invisible until it is: pg_control.tar, files.json, backup_manifest,
// the sentinel last.
func (p *packer) seal(ctx context.Context, sn *archive.Sentinel, tablespaces []archive.Tablespace, labelFile, spcmap string, ctl []byte) error {
	log := p.log
	if err := p.putControl(ctx, labelFile, spcmap, ctl); err != nil {
		return err
	}
	m := &archive.Manifest{Format: archive.ManifestFormat(p.files), Name: sn.Name, Tablespaces: tablespaces, Files: p.files}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	if sn.IsDelta() {
		m.Format, m.Paged = archive.ManifestFormatDelta, p.paged
		sort.Slice(m.Paged, func(i, j int) bool { return m.Paged[i].Path < m.Paged[j].Path })
	}
	stored, err := archive.PutManifest(ctx, p.store, sn.ManifestKey, p.enc, m)
	if err != nil {
		return err
	}
	if !sn.IsDelta() {
		// A delta has none: its paged files' checksums are not the whole
		// files' that pg_verifybackup would check.
		sn.PGManifestKey = archive.PGManifestKey(sn.Name, p.enc.Ext())
		pgStored, err := archive.PutStream(ctx, p.store, sn.PGManifestKey, p.enc, func(w io.Writer) error {
			return writePGManifest(w, m.Files, sn.Timeline, sn.StartLSN, sn.FinishLSN)
		})
		if err != nil {
			return err
		}
		stored += pgStored
	}
	sn.Partitions = int(p.next.Load())
	sn.Files = len(m.Files) + len(m.Paged)
	sn.DatabaseDirs = p.dbDirs
	sort.Strings(sn.DatabaseDirs)
	sn.ExpandedSize = p.expanded.Load()
	sn.StoredSize = p.stored.Load() + stored
	sn.FinishTime = time.Now().UTC()
	if sn.IsDelta() {
		// A delta whose base went while it ran could never be restored.
		if _, err := p.store.Stat(ctx, archive.SentinelKey(sn.DeltaBase)); err != nil {
			return fmt.Errorf("delta: base backup %s is gone since this backup started (%w); take a full backup", sn.DeltaBase, err)
		}
	}
	if _, err := archive.PutJSON(ctx, p.store, archive.SentinelKey(sn.Name), sn); err != nil {
		return err
	}
	if err := p.store.Delete(ctx, archive.RunningKey(sn.Name)); err != nil {
		// The backup is whole; delete removes the marker with it.
		log.Warn("could not remove the running-backup marker", "key", archive.RunningKey(sn.Name), "err", err)
	}
	// Counted as backup-fetch counts them: regular files, and apart from
	// them the directories the manifest also lists.
	files, dirs := 0, 0
	for _, f := range m.Files {
		switch f.Type {
		case tarball.TypeFile:
			files++
		case tarball.TypeDir:
			dirs++
		}
	}
	files += len(m.Paged)
	log.Info("backup finished", "name", sn.Name, "finish_lsn", sn.FinishLSN, "files", files, "directories", dirs,
		"expanded_bytes", sn.ExpandedSize, "stored_bytes", sn.StoredSize, "seconds", sn.FinishTime.Sub(sn.StartTime).Seconds())
	return nil
}

func checkDataDir(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("no data directory given: walnut backup-push PGDATA")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if _, err := os.ReadFile(filepath.Join(abs, "PG_VERSION")); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s is not a PostgreSQL data directory (no PG_VERSION)", abs)
		}
		return "", fmt.Errorf("data directory %s: %w", abs, err)
	}
	if _, err := os.ReadDir(abs); err != nil {
		return "", fmt.Errorf("data directory %s: %w", abs, err)
	}
	return abs, nil
}

// sameDir refuses to back up one directory while talking to the server of
// another: the files and the WAL positions would not belong together.
func sameDir(given, server string) error {
	a, err1 := filepath.EvalSymlinks(given)
	b, err2 := filepath.EvalSymlinks(server)
	if err1 != nil || err2 != nil || a != b {
		return fmt.Errorf("data directory %s is not the connected server's (%s); check PGHOST/PGPORT", given, server)
	}
	return nil
}

func deletePrefix(ctx context.Context, s storage.Store, prefix string, log *slog.Logger) {
	var keys []string
	if err := s.List(ctx, prefix, func(oi storage.ObjectInfo) error {
		keys = append(keys, oi.Key)
		return nil
	}); err != nil {
		log.Warn("could not list parts of the failed backup; delete garbage will remove them", "prefix", prefix, "err", err)
		return
	}
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			log.Warn("could not delete part of the failed backup; delete garbage will remove it", "key", k, "err", err)
		}
	}
}

// waitArchived waits until every WAL segment from first to last is in the
// archive: only then can the backup be restored, so only then may its
// sentinel exist. Checking the archive itself, rather than trusting that
// archive_command succeeded, also catches an archive_command that stores
// somewhere else.
func waitArchived(ctx context.Context, s storage.Store, tli uint32, first, last, segSize uint64, timeout time.Duration, log *slog.Logger) error {
	deadline := time.Now().Add(timeout)
	delay := 100 * time.Millisecond
	for seg := first; seg <= last; {
		name := pgcontrol.WALFileName(tli, seg, segSize)
		_, err := archive.FindWAL(ctx, s, name)
		switch {
		case err == nil:
			seg++
			continue
		case !errors.Is(err, storage.ErrNotFound):
			return err
		case time.Now().After(deadline):
			return fmt.Errorf("WAL segment %s, which the backup needs, did not reach the archive within %s: check archive_command and pg_stat_archiver", name, timeout)
		}
		log.Debug("waiting for WAL to be archived", "segment", name)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		// The last segment usually arrives within a second of
		// pg_backup_stop; a long sleep here would be most of a small
		// backup's time. Polls are one listing each.
		delay = min(2*delay, 500*time.Millisecond)
	}
	return nil
}
