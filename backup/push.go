package backup

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/tarball"
)

// BackupPushOptions is what backup-push needs.
type BackupPushOptions struct {
	Store          storage.Store
	Codec          compression.Codec
	Encrypt        *crypto.Recipients // nil: stored unencrypted
	DataDir        string
	ConnString     string // libpq keyword/value string; holds the password, never log it
	FastCheckpoint bool
	PartitionSize  int64 // uncompressed bytes per partition
	Concurrency    int   // partitions compressed and uploaded at once
	// ArchiveTimeout bounds the wait for the WAL the backup needs to reach
	// the archive; without it the backup is not restorable.
	ArchiveTimeout time.Duration
	Log            *slog.Logger
}

// DefaultArchiveTimeout is how long backup-push waits for its WAL.
const DefaultArchiveTimeout = 10 * time.Minute

// DefaultPartitionSize keeps partitions big enough that per-object costs
// vanish and small enough that a failed upload loses little.
const DefaultPartitionSize = 1 << 30

// BackupPush takes a non-exclusive base backup of the running server whose
// data directory is DataDir and stores it under backups/<name>/. The
// sentinel is written last, so a backup interrupted at any point is never
// listed.
func BackupPush(ctx context.Context, o BackupPushOptions) (_ *Sentinel, err error) {
	if o.PartitionSize <= 0 {
		o.PartitionSize = DefaultPartitionSize
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.ArchiveTimeout <= 0 {
		o.ArchiveTimeout = DefaultArchiveTimeout
	}
	log := o.Log
	enc := encoding{codec: o.Codec, to: o.Encrypt}
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
	if facts.ArchiveMode == "off" {
		return nil, errors.New("archive_mode is off: a base backup cannot be restored without the WAL archive; set archive_mode = on and archive_command = 'walnut wal-push %p'")
	}
	if err := checkIdentity(ctx, o.Store, facts.SystemID, sess.version/10000, facts.WALSegmentSize); err != nil {
		return nil, err
	}

	startTime := time.Now().UTC()
	label := "walnut " + startTime.Format(time.RFC3339)
	startLSN, tli, err := sess.start(ctx, label, o.FastCheckpoint)
	if err != nil {
		return nil, err
	}
	seg := facts.WALSegmentSize
	sn := &Sentinel{
		Format:           formatVersion,
		StartTime:        startTime,
		StartLSN:         startLSN.String(),
		Timeline:         tli,
		StartSegment:     pgcontrol.WALFileName(tli, pgcontrol.SegmentNumber(startLSN, seg), seg),
		StartOffset:      fmt.Sprintf("%08X", uint64(startLSN)%seg),
		SystemIdentifier: strconv.FormatUint(facts.SystemID, 10),
		PGVersion:        sess.version,
		WALSegmentSize:   seg,
		Compression:      o.Codec.Name(),
		Encrypted:        o.Encrypt != nil,
		DataDir:          dataDir,
	}
	sn.Name = "base_" + sn.StartSegment + "_" + sn.StartOffset
	sn.Hostname, _ = os.Hostname()
	sn.ManifestKey = manifestKey(sn.Name, enc.ext())
	sn.ControlKey = controlKey(sn.Name, enc.ext())
	log.Info("backup started", "name", sn.Name, "start_lsn", sn.StartLSN, "timeline", tli)

	if _, err := o.Store.Stat(ctx, sentinelKey(sn.Name)); err == nil {
		return nil, fmt.Errorf("backup %s already exists", sn.Name)
	}

	defer func() {
		if err != nil {
			// Without a sentinel the parts are invisible; removing them
			// now saves a later delete garbage the work.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			deletePrefix(dctx, o.Store, backupPrefix(sn.Name), log)
		}
	}()
	p := &packer{store: o.Store, enc: enc, name: sn.Name, limit: o.PartitionSize, log: log}
	versionDir := fmt.Sprintf("PG_%d_", sess.version/10000)
	if err := p.run(ctx, dataDir, facts.Tablespaces, versionDir, o.Concurrency); err != nil {
		return nil, err
	}

	stopLSN, labelFile, spcmap, err := sess.stop(ctx)
	if err != nil {
		return nil, err
	}
	sn.FinishLSN = stopLSN.String()
	stopSeg := pgcontrol.SegmentNumber(stopLSN-1, seg) // the segment holding the last byte
	sn.StopSegment = pgcontrol.WALFileName(tli, stopSeg, seg)
	sn.StopOffset = fmt.Sprintf("%08X", uint64(stopLSN)-stopSeg*seg)

	if err := waitArchived(ctx, o.Store, tli, pgcontrol.SegmentNumber(startLSN, seg), stopSeg, seg, o.ArchiveTimeout, log); err != nil {
		return nil, err
	}
	if err := p.putControl(ctx, dataDir, labelFile, spcmap); err != nil {
		return nil, err
	}
	m := &Manifest{Format: formatVersion, Name: sn.Name, Tablespaces: facts.Tablespaces, Files: p.files}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	stored, err := putManifest(ctx, o.Store, sn.ManifestKey, enc, m)
	if err != nil {
		return nil, err
	}
	sn.PGManifestKey = pgManifestKey(sn.Name, enc.ext())
	pgStored, err := putStream(ctx, o.Store, sn.PGManifestKey, enc, func(w io.Writer) error {
		return writePGManifest(w, m.Files, tli, sn.StartLSN, sn.FinishLSN)
	})
	if err != nil {
		return nil, err
	}
	stored += pgStored
	sn.Partitions = int(p.next.Load())
	sn.Files = len(m.Files)
	sn.ExpandedSize = p.expanded.Load()
	sn.StoredSize = p.stored.Load() + stored
	sn.FinishTime = time.Now().UTC()
	if _, err := putJSON(ctx, o.Store, sentinelKey(sn.Name), sn); err != nil {
		return nil, err
	}
	log.Info("backup finished", "name", sn.Name, "finish_lsn", sn.FinishLSN, "files", sn.Files,
		"expanded_bytes", sn.ExpandedSize, "stored_bytes", sn.StoredSize, "seconds", sn.FinishTime.Sub(startTime).Seconds())
	return sn, nil
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

// packer fills tar partitions from the walk, several at once: each worker
// takes files from the shared queue into its own partition until the
// partition is full, so reading, compressing and uploading overlap.
type packer struct {
	store    storage.Store
	enc      encoding
	name     string
	limit    int64
	log      *slog.Logger
	next     atomic.Int32
	stored   atomic.Int64
	expanded atomic.Int64
	mu       sync.Mutex
	files    []tarball.File
}

func (p *packer) run(ctx context.Context, dataDir string, tablespaces []Tablespace, versionDir string, workers int) error {
	g, ctx := newGroup(ctx)
	items := make(chan walkItem, 64)
	g.Go(func() error {
		defer close(items)
		w := &walker{versionDir: versionDir, skippedLink: func(name string) {
			p.log.Warn("symlinked directory stored empty; restore its contents yourself", "path", name)
		}, emit: func(it walkItem) error {
			select {
			case items <- it:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}
		return w.walkCluster(ctx, dataDir, tablespaces)
	})
	for range workers {
		g.Go(func() error { return p.worker(ctx, items) })
	}
	return g.Wait()
}

func (p *packer) worker(ctx context.Context, items <-chan walkItem) error {
	for {
		var first walkItem
		var ok bool
		select {
		case first, ok = <-items:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		n := int(p.next.Add(1))
		key := partitionKey(p.name, n, p.enc.ext())
		var entries []tarball.File
		stored, err := putStream(ctx, p.store, key, p.enc, func(w io.Writer) error {
			tw := tarball.NewWriter(w)
			for item, more := first, true; more; {
				f, err := p.add(tw, item)
				if err != nil {
					return err
				}
				if f != nil {
					f.Partition = n
					entries = append(entries, *f)
				}
				if tw.Written() >= p.limit {
					break
				}
				select {
				case item, more = <-items:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return tw.Close()
		})
		if err != nil {
			return fmt.Errorf("partition %s: %w", key, err)
		}
		p.stored.Add(stored)
		p.mu.Lock()
		p.files = append(p.files, entries...)
		p.mu.Unlock()
		p.log.Debug("partition stored", "key", key, "files", len(entries), "stored_bytes", stored)
	}
}

// add writes one walk item; a file that vanished since the walk saw it is
// skipped (nil entry).
func (p *packer) add(tw *tarball.Writer, it walkItem) (*tarball.File, error) {
	var f tarball.File
	var err error
	switch mode := it.Info.Mode(); {
	case mode.IsDir():
		f, err = tw.AddDir(it.Name, mode.Perm(), it.Info.ModTime())
	default:
		in, oerr := os.Open(it.Path)
		if errors.Is(oerr, fs.ErrNotExist) {
			return nil, nil
		}
		if oerr != nil {
			return nil, oerr
		}
		defer in.Close()
		info, serr := in.Stat()
		if serr != nil {
			return nil, serr
		}
		var shrunk bool
		f, shrunk, err = tw.AddFile(it.Name, in, info.Size(), info.Mode().Perm(), info.ModTime())
		if shrunk {
			// The server truncated it while we read; WAL replay restores it.
			p.log.Debug("file shrank while read; padded with zeros", "path", it.Path)
		}
		p.expanded.Add(info.Size())
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", it.Path, err)
	}
	return &f, nil
}

// putControl stores backup_label, tablespace_map and global/pg_control in
// their own object, after everything else: a restore that lacks them
// cannot be started by mistake.
func (p *packer) putControl(ctx context.Context, dataDir, label, spcmap string) error {
	now := time.Now()
	var entries []tarball.File
	stored, err := putStream(ctx, p.store, controlKey(p.name, p.enc.ext()), p.enc, func(w io.Writer) error {
		tw := tarball.NewWriter(w)
		add := func(name string, r io.Reader, size int64) error {
			f, _, err := tw.AddFile(name, r, size, 0o600, now)
			if err != nil {
				return err
			}
			f.Partition = controlPartition
			entries = append(entries, f)
			return nil
		}
		if err := add("backup_label", strings.NewReader(label), int64(len(label))); err != nil {
			return err
		}
		if spcmap != "" {
			if err := add("tablespace_map", strings.NewReader(spcmap), int64(len(spcmap))); err != nil {
				return err
			}
		}
		ctl, err := os.ReadFile(filepath.Join(dataDir, controlFile))
		if err != nil {
			return err
		}
		if _, err := pgcontrol.ParseControlFile(ctl); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dataDir, controlFile), err)
		}
		if err := add(controlFile, strings.NewReader(string(ctl)), int64(len(ctl))); err != nil {
			return err
		}
		return tw.Close()
	})
	if err != nil {
		return fmt.Errorf("store %s: %w", controlKey(p.name, p.enc.ext()), err)
	}
	p.stored.Add(stored)
	p.files = append(p.files, entries...)
	return nil
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
		_, err := findWAL(ctx, s, name)
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
		delay = min(2*delay, 2*time.Second)
	}
	return nil
}
