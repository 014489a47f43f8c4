package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/tarball"
)

// BackupFetchOptions is what backup-fetch needs.
type BackupFetchOptions struct {
	Store       storage.Store
	Dest        string
	Name        string            // a backup name or LATEST
	Tablespaces map[string]string // old location -> new location
	Concurrency int
	Recovery    *RecoveryOptions // nil: restore the files only
	Keyring     *crypto.Keyring  // decrypts an encrypted backup; nil: none configured
	Log         *slog.Logger
}

// BackupFetchResult says what was restored where.
type BackupFetchResult struct {
	Backup      *Sentinel
	Dest        string
	Files       int
	Bytes       int64
	Tablespaces map[string]string // OID -> restored location
}

// BackupFetch restores a base backup into a new data directory. On failure
// it removes what it wrote, so a half-restored directory is never left
// looking whole; pg_control and backup_label are written last as a second
// guard.
func BackupFetch(ctx context.Context, o BackupFetchOptions) (res *BackupFetchResult, err error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	sn, err := resolveBackup(ctx, o.Store, o.Name)
	if err != nil {
		return nil, err
	}
	m, err := readManifest(ctx, o.Store, sn.ManifestKey, o.Keyring)
	if err != nil {
		return nil, err
	}
	if err := checkComplete(m); err != nil {
		return nil, fmt.Errorf("backup %s: %w", sn.Name, err)
	}
	res = &BackupFetchResult{Backup: sn, Tablespaces: map[string]string{}}
	if res.Dest, err = filepath.Abs(o.Dest); err != nil {
		return nil, err
	}

	var made []string // directories to remove if the restore fails
	defer func() {
		if err != nil {
			for _, d := range made {
				removeContents(d)
			}
			if len(made) > 0 {
				err = fmt.Errorf("%w; the partial restore was removed", err)
			}
		}
	}()
	if err := prepareEmptyDir(res.Dest, 0o700, &made); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(res.Dest)
	if err != nil {
		return nil, err
	}
	defer root.Close()

	mounts := map[string]*os.Root{}
	for _, ts := range m.Tablespaces {
		loc := ts.Location
		if to, ok := o.Tablespaces[loc]; ok {
			loc = to
		}
		if !filepath.IsAbs(loc) {
			return nil, fmt.Errorf("tablespace %s: location %q must be absolute", ts.Name, loc)
		}
		if err := prepareEmptyDir(loc, 0o700, &made); err != nil {
			return nil, fmt.Errorf("tablespace %s: %w", ts.Name, err)
		}
		r, err := os.OpenRoot(loc)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		mounts[path.Join("pg_tblspc", ts.OID)+"/"] = r
		res.Tablespaces[ts.OID] = loc
	}

	byPart := map[int]map[string]tarball.File{}
	for _, f := range m.Files {
		if byPart[f.Partition] == nil {
			byPart[f.Partition] = map[string]tarball.File{}
		}
		byPart[f.Partition][f.Path] = f
		if f.Type == tarball.TypeFile {
			res.Files++
			res.Bytes += f.Size
		}
	}
	if err := makeDirs(root, mounts, m.Files); err != nil {
		return nil, err
	}

	// Data partitions in parallel, then pg_control.tar alone.
	parts := make(chan int)
	g, gctx := newGroup(ctx)
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
	ext := backupExt(sn)
	for range o.Concurrency {
		g.Go(func() error {
			for n := range parts {
				key := partitionKey(sn.Name, n, ext)
				if err := extractObject(gctx, o.Store, o.Keyring, key, root, mounts, byPart[n]); err != nil {
					return err
				}
				o.Log.Debug("partition restored", "key", key)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := linkTablespaces(root, res.Tablespaces); err != nil {
		return nil, err
	}
	if err := extractObject(ctx, o.Store, o.Keyring, sn.ControlKey, root, mounts, byPart[controlPartition]); err != nil {
		return nil, err
	}
	if sn.PGManifestKey != "" {
		if err := restorePGManifest(ctx, o.Store, o.Keyring, sn.PGManifestKey, root); err != nil {
			return nil, err
		}
	}
	if len(o.Tablespaces) > 0 {
		if err := rewriteTablespaceMap(root, m.Tablespaces, res.Tablespaces); err != nil {
			return nil, err
		}
	}
	if o.Recovery != nil {
		if err := writeRecovery(root, sn, *o.Recovery); err != nil {
			return nil, err
		}
	}
	for _, d := range append([]string{res.Dest}, mapValues(res.Tablespaces)...) {
		if err := syncTree(d); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// extractObject restores one tar object, checking every file against the
// manifest entries expected in it.
func extractObject(ctx context.Context, s storage.Store, kr *crypto.Keyring, key string, root *os.Root, mounts map[string]*os.Root, expect map[string]tarball.File) error {
	rc, err := openDecoded(ctx, s, key, kr)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", key, err)
	}
	defer rc.Close()
	if expect == nil {
		expect = map[string]tarball.File{} // nil would mean "check nothing"
	}
	x := &tarball.Extractor{Root: root, Mounts: mounts, Expect: expect, Fsync: true}
	got, err := x.Extract(storage.ContextReader(ctx, rc))
	if err != nil {
		return fmt.Errorf("restore %s: %w", key, err)
	}
	if len(got) != len(expect) {
		return fmt.Errorf("restore %s: %d of the %d entries the manifest lists are missing; the object is incomplete", key, len(expect)-len(got), len(expect))
	}
	return nil
}

// makeDirs creates every directory of the backup first, so that partitions
// extracted in parallel never wait on each other for a parent.
func makeDirs(root *os.Root, mounts map[string]*os.Root, files []tarball.File) error {
	var dirs []tarball.File
	for _, f := range files {
		if f.Type == tarball.TypeDir {
			dirs = append(dirs, f)
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].Path < dirs[j].Path })
	for _, d := range dirs {
		r, name := root, d.Path
		for prefix, mr := range mounts {
			if rest, ok := strings.CutPrefix(d.Path, prefix); ok {
				r, name = mr, rest
			}
		}
		if name == "" {
			continue
		}
		if err := r.MkdirAll(name, d.Mode.Perm()|0o700); err != nil {
			return fmt.Errorf("create %s: %w", d.Path, err)
		}
	}
	return nil
}

func linkTablespaces(root *os.Root, locs map[string]string) error {
	if len(locs) == 0 {
		return nil
	}
	if err := root.MkdirAll("pg_tblspc", 0o700); err != nil {
		return err
	}
	for oid, loc := range locs {
		if err := root.Symlink(loc, path.Join("pg_tblspc", oid)); err != nil {
			return fmt.Errorf("link tablespace %s: %w", oid, err)
		}
	}
	return nil
}

// rewriteTablespaceMap points tablespace_map at remapped locations: at
// startup PostgreSQL recreates pg_tblspc's links from it.
func rewriteTablespaceMap(root *os.Root, tss []Tablespace, locs map[string]string) error {
	var b strings.Builder
	for _, ts := range tss {
		fmt.Fprintf(&b, "%s %s\n", ts.OID, strings.ReplaceAll(locs[ts.OID], `\`, `\\`))
	}
	return root.WriteFile("tablespace_map", []byte(b.String()), 0o600)
}

// prepareEmptyDir makes sure dir exists and is empty, recording it in made
// for cleanup on failure.
func prepareEmptyDir(dir string, mode fs.FileMode, made *[]string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, mode); err != nil {
			return err
		}
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty: restore into a new or empty directory", dir)
	}
	if err := os.Chmod(dir, mode); err != nil {
		return err
	}
	*made = append(*made, dir)
	return nil
}

func removeContents(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// syncTree fsyncs every directory under dir: files were synced as they
// were written, but their names live in the directories.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return syncDir(p)
		}
		return nil
	})
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// restorePGManifest puts backup_manifest in the data directory, where
// pg_verifybackup looks for it; the server ignores it.
func restorePGManifest(ctx context.Context, s storage.Store, kr *crypto.Keyring, key string, root *os.Root) error {
	rc, err := openDecoded(ctx, s, key, kr)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", key, err)
	}
	defer rc.Close()
	f, err := root.OpenFile(pgManifestName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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
func checkComplete(m *Manifest) error {
	need := map[string]bool{controlFile: false, "backup_label": false, "PG_VERSION": false}
	for _, f := range m.Files {
		if _, ok := need[f.Path]; ok && f.Type == tarball.TypeFile {
			need[f.Path] = true
		}
	}
	for _, p := range []string{controlFile, "backup_label", "PG_VERSION"} {
		if !need[p] {
			return fmt.Errorf("manifest lists no %s: not a complete base backup", p)
		}
	}
	return nil
}
