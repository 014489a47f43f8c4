package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/tarball"
)

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
func rewriteTablespaceMap(root *os.Root, tss []archive.Tablespace, locs map[string]string) error {
	var b strings.Builder
	for _, ts := range tss {
		fmt.Fprintf(&b, "%s %s\n", ts.OID, strings.ReplaceAll(locs[ts.OID], `\`, `\\`))
	}
	if err := root.WriteFile("tablespace_map", []byte(b.String()), 0o600); err != nil {
		return err
	}
	return syncOne(root, "tablespace_map")
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
			return archive.SyncDir(p)
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
