package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/tarball"
)

// checkWALEBackup checks what WAL-E's format allows: the sentinel (read
// and checked when it was listed: its stop position after its start),
// every tar partition decodes (lzop's block checksums, gpg's integrity
// check) into a tar stream a restore would accept, the files every base
// backup has are among them, and every WAL segment from the start to the
// stop segment is archived, in either layout, whole and of that segment.
// WAL-E kept no per-file checksums, so no file's content can be checked.
func checkWALEBackup(ctx context.Context, o BackupOptions, sn *archive.Sentinel) *BackupResult {
	b := &backupCheck{o: o, sn: sn}
	res := &BackupResult{Name: sn.Name}
	parts, err := archive.WALEPartitions(ctx, o.Store, sn.Name)
	if err != nil {
		b.problems.add(archive.WALEPartitionsPrefix(sn.Name), "", "%v", err)
	}
	res.Partitions = len(parts)
	found := map[string]bool{}
	var jobs []func(context.Context)
	for _, key := range parts {
		jobs = append(jobs, func(ctx context.Context) {
			rc, err := archive.OpenDecoded(ctx, o.Store, key, o.Keyring)
			if err != nil {
				b.problems.add(key, "", "%s", readFailure(err))
				return
			}
			defer rc.Close()
			got, err := tarball.CheckUnlisted(storage.ContextReader(ctx, rc), func(path string, err error) {
				b.problems.add(key, path, "%v", err)
			})
			if err != nil {
				b.problems.add(key, "", "%s", readFailure(fmt.Errorf("decode: %w", err)))
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			for _, f := range got {
				if f.Type == tarball.TypeFile {
					found[f.Path] = true
					b.files++
					b.bytes += f.Size
				}
			}
		})
	}
	segs, err := waleWALRange(sn)
	if err != nil {
		b.problems.add(archive.WALESentinelKey(sn.Name), "", "%v: its WAL range cannot be checked", err)
	}
	for _, name := range segs {
		jobs = append(jobs, func(ctx context.Context) { b.checkWALEWAL(ctx, name) })
	}
	if len(segs) > 0 {
		res.FirstWAL, res.LastWAL = segs[0], segs[len(segs)-1]
	}
	runJobs(ctx, o.Concurrency, jobs)
	if len(parts) > 0 && len(b.problems.sorted()) == 0 {
		for _, p := range []string{archive.ControlFile, "backup_label", "PG_VERSION"} {
			if !found[p] {
				b.problems.add(archive.WALEPartitionsPrefix(sn.Name), p, "in no partition: not a complete base backup")
			}
		}
	}
	res.Files, res.Bytes, res.WALSegments = b.files, b.bytes, b.wal
	res.Problems = b.problems.sorted()
	return res
}

func waleWALRange(sn *archive.Sentinel) ([]string, error) {
	tli, first, err := pgcontrol.ParseWALFileName(sn.StartSegment, archive.WALESegmentSize)
	if err != nil {
		return nil, err
	}
	_, last, err := pgcontrol.ParseWALFileName(sn.StopSegment, archive.WALESegmentSize)
	if err != nil {
		return nil, err
	}
	var out []string
	for seg := first; seg <= last; seg++ {
		out = append(out, pgcontrol.WALFileName(tli, seg, archive.WALESegmentSize))
	}
	return out, nil
}

// checkWALEWAL finds a segment as wal-fetch would (walnut's layout, then
// WAL-E's) and checks it whole.
func (b *backupCheck) checkWALEWAL(ctx context.Context, name string) {
	o, err := archive.FindWALAny(ctx, b.o.Store, name)
	if errors.Is(err, storage.ErrNotFound) {
		b.problems.add(archive.WALEWALKey(name), "", "missing from the archive: backup %s needs every segment from %s to %s", b.sn.Name, b.sn.StartSegment, b.sn.StopSegment)
		return
	}
	if err != nil {
		b.problems.add(archive.WALEWALKey(name), "", "%v", err)
		return
	}
	if _, err := checkSegment(ctx, b.o.Store, b.o.Keyring, walObject{WALObject: o}, archive.WALESegmentSize); err != nil {
		b.problems.add(o.Key, "", "%s", readFailure(err))
		return
	}
	b.mu.Lock()
	b.wal++
	b.mu.Unlock()
}
