package basebackup

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/walnut-pg/walnut/archive"
)

// What a base backup leaves out, as pg_basebackup does (basebackup.c): files
// that are rebuilt or meaningless on a restored server.
var (
	// Directories whose contents are skipped; the directory itself is kept
	// because the server expects it.
	excludedDirContents = map[string]bool{
		"pg_dynshmem": true, "pg_notify": true, "pg_replslot": true, "pg_serial": true,
		"pg_snapshots": true, "pg_stat_tmp": true, "pg_subtrans": true, "pg_wal": true,
	}
	// Top-level files left out. backup_label and tablespace_map come from
	// pg_backup_stop instead, and global/pg_control is stored last.
	excludedTopFiles = map[string]bool{
		"postmaster.pid": true, "postmaster.opts": true, "backup_label": true,
		"tablespace_map": true, "backup_manifest": true, "current_logfiles": true,
		"postgresql.auto.conf.tmp": true,
		// backup-fetch writes the signal file the restore asks for; one
		// carried over from a standby would silently turn a point-in-time
		// recovery into a standby that never finishes.
		"standby.signal": true, "recovery.signal": true,
	}
	// Temporary relations: t<backend>_<relfilenode>[_fork][.segment].
	tempRelation = regexp.MustCompile(`^t[0-9]+_[0-9]+(_[a-z]+)?(\.[0-9]+)?$`)
	// Relation files: <relfilenode>[_fork][.segment].
	relationFile = regexp.MustCompile(`^([0-9]+)(_[a-z]+)?(\.[0-9]+)?$`)
)

// walkItem is one thing to put in a partition: a file, a directory, or
// one chunk of a file larger than the chunk size.
type walkItem struct {
	Name string // name in the tar, "/"-separated
	Path string // where it is on disk
	Info fs.FileInfo
	// Chunk, when set, is the piece of the file this item stores.
	Chunk *chunkItem
	// Pages, when set, are the only blocks of the file a delta stores.
	Pages *pageSet
	// Data, when set, is the file's (or the chunk's) contents, read from
	// the replication stream; Release hands its buffer back once packed.
	Data    []byte
	Release func()
}

type chunkItem struct {
	Offset, Size int64
}

// walker walks a data directory and its tablespaces, calling emit in a
// stable order. Files that vanish while it walks are skipped, as a running
// server removes files all the time.
type walker struct {
	emit       func(walkItem) error
	versionDir string // "PG_15_": the part of a tablespace that is this cluster's
	// skippedLink hears of symlinked directories stored empty.
	skippedLink func(name string)
}

func (w *walker) walkCluster(ctx context.Context, dataDir string, tablespaces []archive.Tablespace) error {
	if err := w.walkDir(ctx, dataDir, "", true); err != nil {
		return err
	}
	for _, ts := range tablespaces {
		entries, err := os.ReadDir(ts.Location)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), w.versionDir) {
				continue
			}
			name := path.Join("pg_tblspc", ts.OID, e.Name())
			full := filepath.Join(ts.Location, e.Name())
			info, err := os.Lstat(full)
			if err != nil {
				return err
			}
			if err := w.emit(walkItem{Name: name, Path: full, Info: info}); err != nil {
				return err
			}
			if err := w.walkDir(ctx, full, name, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// walkDir emits the entries of dir (already emitted itself) under the tar
// name prefix name.
func (w *walker) walkDir(ctx context.Context, dir, name string, top bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) && !top {
		return nil
	}
	if err != nil {
		return err
	}
	unlogged := unloggedRelations(entries)
	for _, e := range entries {
		base := e.Name()
		rel := path.Join(name, base)
		full := filepath.Join(dir, base)
		if skipEntry(rel, base, top, unlogged) {
			continue
		}
		info, err := os.Lstat(full)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		item := walkItem{Name: rel, Path: full, Info: info}
		switch mode := info.Mode(); {
		case mode.IsRegular():
			if err := w.emit(item); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			if name == "pg_tblspc" {
				continue // a tablespace: walked from its location
			}
			if rel == "pg_wal" {
				// initdb -X: the restore gets a plain directory, as with pg_basebackup.
				if err := w.emitDir(rel, full); err != nil {
					return err
				}
				if err := w.emitArchiveStatus(full); err != nil {
					return err
				}
				continue
			}
			// Another symlink (a config file kept in /etc, a log directory):
			// restore extracts no absolute links, so store what it points
			// to: a file's contents, or an empty directory, as for pg_wal.
			target, err := os.Stat(full)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			item.Info = target
			if target.IsDir() {
				if w.skippedLink != nil {
					w.skippedLink(rel)
				}
			} else if !target.Mode().IsRegular() {
				continue
			}
			if err := w.emit(item); err != nil {
				return err
			}
		case mode.IsDir():
			if err := w.emit(item); err != nil {
				return err
			}
			if name == "" && excludedDirContents[base] {
				if base == "pg_wal" {
					if err := w.emitArchiveStatus(full); err != nil {
						return err
					}
				}
				continue
			}
			if err := w.walkDir(ctx, full, rel, false); err != nil {
				return err
			}
		}
		// Sockets, pipes and devices have no place in a backup.
	}
	return nil
}

func (w *walker) emitDir(name, full string) error {
	info, err := os.Stat(full)
	if err != nil {
		return err
	}
	return w.emit(walkItem{Name: name, Path: full, Info: info})
}

func (w *walker) emitArchiveStatus(walDir string) error {
	status := filepath.Join(walDir, "archive_status")
	if _, err := os.Stat(status); err != nil {
		return nil
	}
	return w.emitDir("pg_wal/archive_status", status)
}

func skipEntry(rel, base string, top bool, unlogged map[string]bool) bool {
	if top && excludedTopFiles[base] {
		return true
	}
	if rel == archive.ControlFile || strings.HasPrefix(base, "pgsql_tmp") || strings.HasPrefix(base, "pg_internal.init") {
		return true
	}
	if tempRelation.MatchString(base) {
		return true
	}
	if m := relationFile.FindStringSubmatch(base); m != nil && unlogged[m[1]] && m[2] != "_init" {
		return true
	}
	return false
}

// unloggedRelations returns the relfilenodes in a database directory that
// have an init fork: an unlogged relation is reset from its init fork at
// startup, so only that fork is worth storing.
func unloggedRelations(entries []fs.DirEntry) map[string]bool {
	var m map[string]bool
	for _, e := range entries {
		if node, ok := strings.CutSuffix(e.Name(), "_init"); ok && relationFile.MatchString(node) {
			if m == nil {
				m = map[string]bool{}
			}
			m[node] = true
		}
	}
	return m
}
