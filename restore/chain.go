package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/tarball"
)

// runChain restores a delta backup: its chain's full backup, then each
// delta in order, each leaving the directory exactly as its manifest
// lists it; the last one's recovery settings are written.
func runChain(ctx context.Context, o Options, last *archive.Sentinel) (*Result, error) {
	chain, err := archive.ResolveChain(ctx, o.Store, last)
	if err != nil {
		return nil, err
	}
	full := chain[0]
	if full.IsWALE() {
		return nil, fmt.Errorf("backup %s: its chain starts at WAL-E's backup %s, which walnut does not take deltas over", last.Name, full.Name)
	}
	fm, err := archive.ReadManifest(ctx, o.Store, full.ManifestKey, o.Keyring)
	if err != nil {
		return nil, err
	}
	if err := checkComplete(fm); err != nil {
		return nil, fmt.Errorf("backup %s: %w", full.Name, err)
	}
	return restoreWith(ctx, o, last, func(r *restorer, res *Result) error {
		if err := r.restoreFiles(ctx, o, full, fm, res); err != nil {
			return err
		}
		o.Log.Info("full backup of the chain restored", "backup", full.Name, "deltas", len(chain)-1)
		var m *archive.Manifest
		for i, d := range chain[1:] {
			// One manifest in memory at a time: the chain's are as large.
			if m, err = archive.ReadManifest(ctx, o.Store, d.ManifestKey, o.Keyring); err != nil {
				return err
			}
			if err := checkComplete(m); err != nil {
				return fmt.Errorf("backup %s: %w", d.Name, err)
			}
			if !sameTablespaces(fm.Tablespaces, m.Tablespaces) {
				return fmt.Errorf("backup %s: its tablespaces differ from those of its chain's full backup %s; restore a full backup taken since the change", d.Name, full.Name)
			}
			if err := r.applyDelta(ctx, o, d, m); err != nil {
				return fmt.Errorf("backup %s (delta %d of %d): %w", d.Name, i+1, len(chain)-1, err)
			}
			o.Log.Info("delta applied", "backup", d.Name, "step", i+1, "of", len(chain)-1)
		}
		res.Files, res.Bytes = 0, 0
		for _, f := range m.Files {
			if f.Type == tarball.TypeFile {
				res.Files++
				res.Bytes += f.Size
			}
		}
		for _, p := range m.Paged {
			res.Files++
			res.Bytes += p.Size
		}
		roots := []*os.Root{r.root}
		for _, mr := range r.mounts {
			roots = append(roots, mr)
		}
		if err := syncAll(ctx, roots); err != nil {
			return err
		}
		if len(o.Tablespaces) > 0 || (o.TablespaceDir != "" && len(m.Tablespaces) > 0) {
			if err := rewriteTablespaceMap(r.root, m.Tablespaces, res.Tablespaces); err != nil {
				return err
			}
		}
		return r.settle(o, last, res)
	})
}

func sameTablespaces(a, b []archive.Tablespace) bool {
	key := func(ts []archive.Tablespace) []string {
		var k []string
		for _, t := range ts {
			k = append(k, t.OID+" "+t.Location)
		}
		slices.Sort(k)
		return k
	}
	return slices.Equal(key(a), key(b))
}

// applyDelta turns the restored chain so far into the delta d, whose
// manifest is m: what m does not list goes, files it stores whole
// replace the chain's, paged files get their changed pages and their
// size, and every file is checked against m.
func (r *restorer) applyDelta(ctx context.Context, o Options, d *archive.Sentinel, m *archive.Manifest) error {
	if err := r.sweep(m); err != nil {
		return err
	}
	if err := makeDirs(r.root, r.mounts, m.Files); err != nil {
		return err
	}
	for _, f := range m.Files {
		if f.Type == tarball.TypeDir {
			continue
		}
		root, rel := r.locate(f.Path)
		if err := root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("replace %s: %w", f.Path, err)
		}
	}
	byPart, err := tarball.ByPartition(m.Files)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", d.ManifestKey, err)
	}
	if r.chunks, err = tarball.NewAssembler(m.Files); err != nil {
		return fmt.Errorf("manifest %s: %w", d.ManifestKey, err)
	}
	r.pages = newPageApplier(r, m.Paged)
	defer func() { r.pages = nil }()
	err = r.extractPartitions(ctx, d, byPart, o.Concurrency, o.Log)
	if ferr := r.chunks.Finish(); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if err := r.pages.finish(); err != nil {
		return err
	}
	if err := r.extract(ctx, d.ControlKey, byPart[archive.ControlPartition], nil, true); err != nil {
		return err
	}
	return r.checkSizes(m)
}

// locate gives the root and name within it of a manifest path.
func (r *restorer) locate(p string) (*os.Root, string) {
	for prefix, mr := range r.mounts {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			return mr, rest
		}
	}
	return r.root, p
}

// sweep removes every file and directory the manifest does not list: a
// relation dropped, or a database, since the chain's previous backup.
func (r *restorer) sweep(m *archive.Manifest) error {
	keep := make(map[string]bool, len(m.Files)+len(m.Paged))
	for _, f := range m.Files {
		keep[f.Path] = true
	}
	for _, p := range m.Paged {
		keep[p.Path] = true
	}
	walk := func(root *os.Root, prefix string) error {
		return fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
			if err != nil || name == "." {
				return err
			}
			full := prefix + name
			if d.Type()&fs.ModeSymlink != 0 && prefix == "" && strings.HasPrefix(name, "pg_tblspc/") {
				return nil // a tablespace's link, made by the restore
			}
			if keep[full] {
				return nil
			}
			if err := root.RemoveAll(name); err != nil {
				return fmt.Errorf("remove %s, which the delta does not have: %w", full, err)
			}
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		})
	}
	if err := walk(r.root, ""); err != nil {
		return err
	}
	for prefix, mr := range r.mounts {
		if err := walk(mr, prefix); err != nil {
			return err
		}
	}
	return nil
}

// checkSizes checks that every file of the manifest is there at its size:
// whole files and chunks were checked against their CRC32C as written,
// and paged entries as applied.
func (r *restorer) checkSizes(m *archive.Manifest) error {
	check := func(p string, size int64) error {
		root, rel := r.locate(p)
		info, err := root.Lstat(rel)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", tarball.ErrCorrupt, p, err)
		}
		if !info.Mode().IsRegular() || info.Size() != size {
			return fmt.Errorf("%w: %s: %d bytes after the delta, manifest %d", tarball.ErrCorrupt, p, info.Size(), size)
		}
		return nil
	}
	for _, f := range m.Files {
		if f.Type != tarball.TypeFile {
			continue
		}
		if err := check(f.Path, f.Size); err != nil {
			return err
		}
	}
	for _, p := range m.Paged {
		if err := check(p.Path, p.Size); err != nil {
			return err
		}
	}
	return nil
}
