package restore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/tarball"
)

// Options is what backup-fetch needs.
type Options struct {
	Store       storage.Store
	Dest        string
	Name        string            // a backup name or LATEST
	Tablespaces map[string]string // old location -> new location
	// TablespaceDir, when set, restores every tablespace Tablespaces does
	// not map into TablespaceDir/<oid>: a restore drill must never write
	// to the source's tablespace locations.
	TablespaceDir string
	Concurrency   int
	Recovery      *RecoveryOptions // nil: restore the files only
	// ArchiveModeOff sets archive_mode = off in the restore, so a copy
	// restored for inspection never archives into the source's archive.
	ArchiveModeOff bool
	Keyring        *crypto.Keyring // decrypts an encrypted backup; nil: none configured
	Log            *slog.Logger
	Progress       archive.Progress // nil: none
}

// Result says what was restored where.
type Result struct {
	Backup      *archive.Sentinel
	Dest        string
	Files       int
	Bytes       int64
	Tablespaces map[string]string // OID -> restored location
}

// restorer is one restore in progress: where it writes and what it reads
// from, shared by the steps of Run.
type restorer struct {
	store    storage.Store
	keyring  *crypto.Keyring
	progress archive.Progress
	root     *os.Root            // the data directory
	mounts   map[string]*os.Root // "pg_tblspc/<oid>/" -> the tablespace's location
	chunks   *tarball.Assembler  // writes chunked files in place, across partitions
	pages    *pageApplier        // writes a delta's changed pages in place
	made     []string            // directories to empty if the restore fails
}

// Run restores a base backup into a new data directory. On failure it
// removes what it wrote, so a half-restored directory is never left
// looking whole; pg_control and backup_label are written last as a second
// guard.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if err := archive.Require(ctx, o.Store); err != nil {
		return nil, err
	}
	sn, err := archive.ResolveBackup(ctx, o.Store, o.Name)
	if err != nil {
		return nil, err
	}
	if sn.IsWALE() {
		return runWALEBackup(ctx, o, sn)
	}
	if sn.IsDelta() {
		return runChain(ctx, o, sn)
	}
	m, err := archive.ReadManifest(ctx, o.Store, sn.ManifestKey, o.Keyring)
	if err != nil {
		return nil, err
	}
	if err := checkComplete(m); err != nil {
		return nil, fmt.Errorf("backup %s: %w", sn.Name, err)
	}
	return restoreWith(ctx, o, sn, func(r *restorer, res *Result) error {
		return r.runWalnut(ctx, o, sn, m, res)
	})
}

// restoreWith gives the timeline advice, then runs body with a restorer
// for sn; when body fails it empties every directory the restore made, so
// a half-restored directory is never left looking whole.
func restoreWith(ctx context.Context, o Options, sn *archive.Sentinel, body func(*restorer, *Result) error) (res *Result, err error) {
	if o.Recovery != nil && (o.Recovery.TargetTimeline == "" || o.Recovery.TargetTimeline == "latest") {
		advice, err := timelineAdvice(ctx, o.Store, o.Keyring, sn)
		if err != nil {
			return nil, err
		}
		if advice != "" {
			o.Log.Warn(advice)
		}
	}
	res = &Result{Backup: sn, Tablespaces: map[string]string{}}
	if res.Dest, err = filepath.Abs(o.Dest); err != nil {
		return nil, err
	}
	r := &restorer{store: o.Store, keyring: o.Keyring, progress: o.Progress, mounts: map[string]*os.Root{}}
	defer func() {
		if err != nil {
			for _, d := range r.made {
				removeContents(d)
			}
			if len(r.made) > 0 {
				err = fmt.Errorf("%w; the partial restore was removed", err)
			}
		}
	}()
	defer r.close()
	if err := body(r, res); err != nil {
		return nil, err
	}
	return res, nil
}

// runWalnut restores a backup in walnut's own layout, whose manifest is m.
func (r *restorer) runWalnut(ctx context.Context, o Options, sn *archive.Sentinel, m *archive.Manifest, res *Result) error {
	if err := r.restoreFiles(ctx, o, sn, m, res); err != nil {
		return err
	}
	if len(o.Tablespaces) > 0 || (o.TablespaceDir != "" && len(m.Tablespaces) > 0) {
		if err := rewriteTablespaceMap(r.root, m.Tablespaces, res.Tablespaces); err != nil {
			return err
		}
	}
	return r.settle(o, sn, res)
}

// restoreFiles writes every file of the backup, pg_control and
// backup_label last.
func (r *restorer) restoreFiles(ctx context.Context, o Options, sn *archive.Sentinel, m *archive.Manifest, res *Result) error {
	if err := r.open(res.Dest, m.Tablespaces, o.Tablespaces, o.TablespaceDir, res.Tablespaces); err != nil {
		return err
	}

	// Tar entries by partition: a chunked file is one entry per chunk,
	// written in place by the assembler whichever partition holds it.
	byPart, err := tarball.ByPartition(m.Files)
	if err != nil {
		return fmt.Errorf("backup %s: manifest %s: %w", sn.Name, sn.ManifestKey, err)
	}
	if r.chunks, err = tarball.NewAssembler(m.Files); err != nil {
		return fmt.Errorf("backup %s: manifest %s: %w", sn.Name, sn.ManifestKey, err)
	}
	for _, f := range m.Files {
		if f.Type == tarball.TypeFile {
			res.Files++
			res.Bytes += f.Size
		}
	}
	if err := makeDirs(r.root, r.mounts, m.Files); err != nil {
		return err
	}
	if o.Progress != nil {
		o.Progress.Total(tarSize(m.Files))
	}
	err = r.extractPartitions(ctx, sn, byPart, o.Concurrency, o.Log)
	// Always: it closes the chunked files still open, and removes any
	// that lack a chunk.
	if ferr := r.chunks.Finish(); err == nil && ferr != nil {
		err = fmt.Errorf("backup %s: %w", sn.Name, ferr)
	}
	if err != nil {
		return err
	}
	// The data is durable before pg_control and backup_label exist, so a
	// crash can leave a restore that lacks them, never one that has them
	// over missing data.
	roots := []*os.Root{r.root}
	for _, mr := range r.mounts {
		roots = append(roots, mr)
	}
	if err := syncAll(ctx, roots); err != nil {
		return err
	}
	if err := linkTablespaces(r.root, res.Tablespaces); err != nil {
		return err
	}
	if err := r.extract(ctx, sn.ControlKey, byPart[archive.ControlPartition], nil, true); err != nil {
		return err
	}
	if sn.PGManifestKey != "" {
		return r.restorePGManifest(ctx, sn.PGManifestKey)
	}
	return nil
}

// settle writes the recovery settings asked for and makes the restored
// directories durable: the last step of every restore.
func (r *restorer) settle(o Options, sn *archive.Sentinel, res *Result) error {
	if o.Recovery != nil {
		if err := writeRecovery(r.root, sn, *o.Recovery); err != nil {
			return err
		}
	}
	if o.ArchiveModeOff {
		if err := appendSettings(r.root, sn, [][2]string{{"archive_mode", "off"}}); err != nil {
			return err
		}
	}
	for _, d := range append([]string{res.Dest}, mapValues(res.Tablespaces)...) {
		if err := syncTree(d); err != nil {
			return err
		}
	}
	return nil
}

// open prepares the empty data directory and tablespace locations (remap:
// old location -> new; else under tsDir if set) and records where each
// tablespace went in locs.
func (r *restorer) open(dest string, tss []archive.Tablespace, remap map[string]string, tsDir string, locs map[string]string) error {
	if err := prepareEmptyDir(dest, 0o700, &r.made); err != nil {
		return err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return err
	}
	r.root = root
	for _, ts := range tss {
		loc := ts.Location
		if to, ok := remap[loc]; ok {
			loc = to
		} else if tsDir != "" {
			loc = filepath.Join(tsDir, ts.OID)
		}
		if !filepath.IsAbs(loc) {
			return fmt.Errorf("tablespace %s: location %q must be absolute", ts.Name, loc)
		}
		if err := prepareEmptyDir(loc, 0o700, &r.made); err != nil {
			return fmt.Errorf("tablespace %s: %w", ts.Name, err)
		}
		mr, err := os.OpenRoot(loc)
		if err != nil {
			return err
		}
		r.mounts[path.Join("pg_tblspc", ts.OID)+"/"] = mr
		locs[ts.OID] = loc
	}
	return nil
}

func (r *restorer) close() {
	if r.root != nil {
		r.root.Close()
	}
	for _, mr := range r.mounts {
		mr.Close()
	}
}

// extractPartitions restores the data partitions, several at once.
func (r *restorer) extractPartitions(ctx context.Context, sn *archive.Sentinel, byPart map[int]map[string]tarball.File, workers int, log *slog.Logger) error {
	parts := make(chan int)
	g, gctx := archive.NewGroup(ctx)
	g.Go(func() error {
		defer close(parts)
		for n := 1; n <= sn.Partitions; n++ {
			select {
			case parts <- n:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	ext := archive.BackupExt(sn)
	for range workers {
		g.Go(func() error {
			for n := range parts {
				key := archive.PartitionKey(sn.Name, n, ext)
				if err := r.extract(gctx, key, byPart[n], r.chunks, false); err != nil {
					return err
				}
				log.Debug("partition restored", "key", key)
			}
			return nil
		})
	}
	return g.Wait()
}

// extract restores one tar object, checking every file against the
// manifest entries expected in it. With fsync each file is durable as it
// completes; without, writeback is only started and syncAll finishes it.
func (r *restorer) extract(ctx context.Context, key string, expect map[string]tarball.File, chunks *tarball.Assembler, fsync bool) error {
	rc, err := archive.OpenDecoded(ctx, r.store, key, r.keyring)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", key, err)
	}
	defer rc.Close()
	if expect == nil {
		expect = map[string]tarball.File{} // nil would mean "check nothing"
	}
	x := &tarball.Extractor{Root: r.root, Mounts: r.mounts, Expect: expect, Chunks: chunks, Fsync: fsync, Writeback: !fsync}
	if r.pages != nil && chunks != nil {
		x.Other = r.pages.take
	}
	got, err := x.Extract(archive.CountProgress(storage.ContextReader(ctx, rc), r.progress))
	if err != nil {
		return fmt.Errorf("restore %s: %w", key, err)
	}
	// Entries the page applier took are in got too, and counted there.
	found := make(map[string]bool, len(got))
	for _, f := range got {
		found[f.Path] = true
	}
	missing, first := 0, ""
	for p := range expect {
		if !found[p] {
			missing++
			if first == "" || p < first {
				first = p
			}
		}
	}
	if missing > 0 {
		return fmt.Errorf("restore %s: %w: %d of the %d entries the manifest lists are missing, first %s; the object is incomplete",
			key, tarball.ErrCorrupt, missing, len(expect), first)
	}
	return nil
}

// restorePGManifest puts backup_manifest in the data directory, where
// pg_verifybackup looks for it; the server ignores it.
func (r *restorer) restorePGManifest(ctx context.Context, key string) error {
	rc, err := archive.OpenDecoded(ctx, r.store, key, r.keyring)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", key, err)
	}
	defer rc.Close()
	f, err := r.root.OpenFile(archive.PGManifestName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return fmt.Errorf("fetch %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkComplete refuses a manifest without what every base backup has:
// such a "backup" would restore into a directory that cannot start.
func checkComplete(m *archive.Manifest) error {
	need := map[string]bool{archive.ControlFile: false, "backup_label": false, "PG_VERSION": false}
	for _, f := range m.Files {
		if _, ok := need[f.Path]; ok && f.Type == tarball.TypeFile {
			need[f.Path] = true
		}
	}
	for _, p := range []string{archive.ControlFile, "backup_label", "PG_VERSION"} {
		if !need[p] {
			return fmt.Errorf("manifest lists no %s: not a complete base backup", p)
		}
	}
	return nil
}
