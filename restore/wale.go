package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/tarball"
)

// runWALE restores a backup WAL-E made: its tar partitions, in parallel,
// through the same safe extractor as walnut's own (os.Root, no absolute
// names, no "..", no links out), tablespaces to the locations WAL-E's spec
// recorded (or where --tablespace-mapping sends them), then walnut's
// recovery settings. WAL-E kept no per-file manifest: what can be checked
// is lzop's block checksums (and gpg's MDC) on every partition, the tar
// framing, and that the files every base backup has arrived.
func (r *restorer) runWALE(ctx context.Context, o Options, sn *archive.Sentinel, res *Result) error {
	parts, err := archive.WALEPartitions(ctx, o.Store, sn.Name)
	if err != nil {
		return err
	}
	tss := make([]archive.Tablespace, len(sn.WALETablespaces))
	for i, ts := range sn.WALETablespaces {
		tss[i] = ts
		tss[i].Name = ts.OID // WAL-E recorded no names
	}
	if err := r.open(res.Dest, tss, o.Tablespaces, o.TablespaceDir, res.Tablespaces); err != nil {
		return err
	}
	if o.Progress != nil {
		o.Progress.Total(sn.ExpandedSize)
	}
	if err := r.extractWALEPartitions(ctx, parts, o.Concurrency, o.Log, res); err != nil {
		return err
	}
	for _, p := range []string{archive.ControlFile, "backup_label", "PG_VERSION"} {
		if fi, err := r.root.Stat(p); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("WAL-E backup %s holds no %s: not a complete base backup", sn.Name, p)
		}
	}
	roots := []*os.Root{r.root}
	for _, mr := range r.mounts {
		roots = append(roots, mr)
	}
	if err := syncAll(ctx, roots); err != nil {
		return err
	}
	if err := linkWALETablespaces(r.root, res.Tablespaces); err != nil {
		return err
	}
	if _, err := r.root.Stat("tablespace_map"); err == nil && len(tss) > 0 {
		if err := rewriteTablespaceMap(r.root, tss, res.Tablespaces); err != nil {
			return err
		}
	}
	var missing []string
	for _, f := range []string{"postgresql.conf", "pg_hba.conf", "pg_ident.conf"} {
		if _, err := r.root.Stat(f); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 && o.Log != nil {
		o.Log.Warn("WAL-E left the server's configuration files out of its backups: put yours in place before starting the server (or point it at them, as Debian's /etc/postgresql does)", "missing", missing)
	}
	return r.settle(o, sn, res)
}

func (r *restorer) extractWALEPartitions(ctx context.Context, keys []string, workers int, log *slog.Logger, res *Result) error {
	ch := make(chan string)
	g, gctx := archive.NewGroup(ctx)
	g.Go(func() error {
		defer close(ch)
		for _, k := range keys {
			select {
			case ch <- k:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	counts := make(chan [2]int64, len(keys))
	for range workers {
		g.Go(func() error {
			for key := range ch {
				rc, err := archive.OpenDecoded(gctx, r.store, key, r.keyring)
				if err != nil {
					return fmt.Errorf("fetch %s: %w", key, err)
				}
				x := &tarball.Extractor{Root: r.root, Mounts: r.mounts, Writeback: true, RootDirEntry: true}
				got, err := x.Extract(archive.CountProgress(storage.ContextReader(gctx, rc), r.progress))
				if err == nil {
					err = archive.ReadToEnd(rc) // gpg's verdict comes at the end
				}
				rc.Close()
				if err != nil {
					return fmt.Errorf("restore %s: %w", key, err)
				}
				var files, bytes int64
				for _, f := range got {
					if f.Type == tarball.TypeFile {
						files++
						bytes += f.Size
					}
				}
				counts <- [2]int64{files, bytes}
				log.Debug("partition restored", "key", key)
			}
			return nil
		})
	}
	err := g.Wait()
	close(counts)
	for c := range counts {
		res.Files += int(c[0])
		res.Bytes += c[1]
	}
	return err
}

// linkWALETablespaces points pg_tblspc/<oid> at each tablespace's
// location. WAL-E's partitions hold the tablespace's files under
// pg_tblspc/<oid>/, which the extraction sent to the location, so the
// data directory holds at most an empty directory there (from an entry
// for pg_tblspc/<oid> itself) to replace with the link.
func linkWALETablespaces(root *os.Root, locs map[string]string) error {
	for oid := range locs {
		p := filepath.Join("pg_tblspc", oid)
		if fi, err := root.Lstat(p); err == nil && fi.IsDir() {
			if err := root.Remove(p); err != nil {
				return fmt.Errorf("tablespace %s: %w", oid, err)
			}
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return linkTablespaces(root, locs)
}

// runWALEBackup is Run for a WAL-E backup: the same advice and cleanup.
func runWALEBackup(ctx context.Context, o Options, sn *archive.Sentinel) (*Result, error) {
	return restoreWith(ctx, o, sn, func(r *restorer, res *Result) error {
		return r.runWALE(ctx, o, sn, res)
	})
}
