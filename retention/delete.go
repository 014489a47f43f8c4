package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/storage"
)

// Options is what delete needs.
type Options struct {
	Store   storage.Store
	Policy  Policy
	Confirm bool      // without it, only plan
	Now     time.Time // the clock unfinished backups are aged against; zero means now
	Log     *slog.Logger
}

// deleteWorkers bounds the deletes in flight for the parts of one backup or
// one WAL range; their order does not matter once the sentinel is gone.
const deleteWorkers = 4

// Delete plans what the policy removes and, with Confirm, removes it:
// each backup's sentinel first (after a tombstone that lets a later run
// finish the job), then its parts, then unfinished backups, then WAL, so
// an interruption at any point leaves every listed backup whole and
// restorable, and running it again finishes. It returns the plan with
// Deleted set on what is gone, also when it fails.
func Delete(ctx context.Context, o Options) (*Plan, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := archive.Require(ctx, o.Store); err != nil {
		return nil, err
	}
	inv, err := takeInventory(ctx, o.Store)
	if err != nil {
		return nil, err
	}
	if o.Policy.Mode == Garbage {
		err := storage.Temps(ctx, o.Store, func(oi storage.ObjectInfo) error {
			inv.temps = append(inv.temps, oi)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list temp files: %w", err)
		}
	}
	plan, err := planDelete(o.Policy, inv, now)
	if err != nil {
		return nil, err
	}
	if !o.Confirm {
		return plan, nil
	}
	x := &executor{store: o.Store, log: o.Log, everything: o.Policy.Mode == Everything, tempCutoff: now.Add(-o.Policy.Grace)}
	if err := x.run(ctx, plan); err != nil {
		return plan, fmt.Errorf("delete stopped after %d of %d objects; run it again to finish: %w", x.deleted.Load(), plan.Objects(), err)
	}
	return plan, nil
}

// takeInventory lists the archive once: every object under backups/ and
// wal/, the committed backups' sentinels, and walnut.json.
func takeInventory(ctx context.Context, s storage.Store) (*inventory, error) {
	inv := &inventory{}
	var names []string
	err := s.List(ctx, archive.BackupsDir, func(oi storage.ObjectInfo) error {
		inv.backups = append(inv.backups, oi)
		if n := archive.BackupNameFromSentinel(oi.Key); n != "" {
			names = append(names, n)
		}
		return nil
	})
	if err != nil {
		// Stores name the operation and the prefix in their errors.
		return nil, err
	}
	if inv.sentinels, err = archive.ReadSentinels(ctx, s, names); err != nil {
		return nil, err
	}
	if inv.runningDeltas, err = readRunningDeltas(ctx, s, inv.backups, names); err != nil {
		return nil, err
	}
	// WAL-E's backups and WAL, under the same prefix, retire by the same
	// rules: its sentinels join walnut's, ordered by finish time.
	err = s.List(ctx, archive.WALEBackupsDir, func(oi storage.ObjectInfo) error {
		inv.backups = append(inv.backups, oi)
		return nil
	})
	if err != nil {
		return nil, err // stores name the operation and the prefix
	}
	wale, err := archive.ListWALEBackups(ctx, s)
	if err != nil {
		return nil, err
	}
	inv.sentinels = append(inv.sentinels, wale...)
	for _, dir := range []string{archive.WALDir, archive.WALEWALDir} {
		err = s.List(ctx, dir, func(oi storage.ObjectInfo) error {
			inv.wal = append(inv.wal, oi)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	switch oi, err := s.Stat(ctx, archive.IdentityKey); {
	case err == nil:
		inv.identity = &oi
	case !errors.Is(err, storage.ErrNotFound):
		return nil, err
	}
	return inv, nil
}

type executor struct {
	store      storage.Store
	log        *slog.Logger
	everything bool
	tempCutoff time.Time // temp files written to after it stay
	deleted    atomic.Int64
}

func (x *executor) run(ctx context.Context, plan *Plan) error {
	spared := false
	for i := range plan.Backups {
		b := &plan.Backups[i]
		skip, err := x.deleteBackup(ctx, b)
		if err != nil {
			return err
		}
		if skip != "" {
			plan.Notes = append(plan.Notes, skip)
			spared = true
			continue
		}
		b.Deleted = true
		x.log.Info("deleted backup", "name", b.Name, "objects", b.Objects, "bytes", b.Bytes)
	}
	for i := range plan.Unfinished {
		u := &plan.Unfinished[i]
		if err := x.deleteKeys(ctx, u.parts); err != nil {
			return err
		}
		if u.tombstone != "" {
			if err := x.delete(ctx, u.tombstone); err != nil {
				return err
			}
		}
		u.Deleted = true
		x.log.Info("deleted unfinished backup", "name", u.Name, "objects", u.Objects, "bytes", u.Bytes)
	}
	if spared {
		// The plan's WAL ranges may hold what the spared backup needs.
		plan.Notes = append(plan.Notes, "no WAL deleted: run delete again to plan it anew")
		return nil
	}
	for i := range plan.WAL {
		w := &plan.WAL[i]
		if err := x.deleteKeys(ctx, w.keys); err != nil {
			return err
		}
		w.Deleted = true
		x.log.Info("deleted WAL", "timeline", w.Timeline, "first", w.First, "last", w.Last, "objects", w.Objects, "bytes", w.Bytes)
	}
	if err := x.deleteKeys(ctx, plan.Other); err != nil {
		return err
	}
	for i := range plan.Temps {
		f := &plan.Temps[i]
		// The store checks the age again as it removes: an upload that
		// wrote to it since the plan was made keeps it.
		removed, err := storage.RemoveTemp(ctx, x.store, f.Key, x.tempCutoff)
		if err != nil {
			return err
		}
		if removed {
			f.Deleted = true
			x.deleted.Add(1)
			x.log.Info("deleted temp file", "key", f.Key, "bytes", f.Bytes, "last_modified", f.LastModified)
		}
	}
	if plan.Identity {
		// Last, so an interrupted delete everything still guards the
		// archive against another cluster's WAL until it is run again.
		if err := x.delete(ctx, archive.IdentityKey); err != nil {
			return err
		}
	}
	return nil
}

// deleteBackup removes one committed backup: tombstone, sentinel, parts,
// tombstone. It returns why it left the backup alone, if it did.
func (x *executor) deleteBackup(ctx context.Context, b *BackupDeletion) (string, error) {
	if !x.everything && b.Source != archive.WALESource {
		// backup-mark may have run since the plan was made.
		sn, err := archive.ReadSentinel(ctx, x.store, b.Name)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			// Deleted since it was listed; its parts are still due.
		case err != nil:
			return "", err
		case sn.Permanent:
			return fmt.Sprintf("%s was marked permanent after the plan was made: kept", b.Name), nil
		}
	}
	tomb := archive.TombstoneKey(b.Name)
	if _, err := archive.PutJSON(ctx, x.store, tomb, map[string]any{"name": b.Name, "deleting_since": time.Now().UTC()}); err != nil {
		return "", err
	}
	if err := x.delete(ctx, b.sentinel); err != nil {
		return "", err
	}
	if err := x.deleteKeys(ctx, b.parts); err != nil {
		return "", err
	}
	if err := x.store.Delete(ctx, tomb); err != nil { // not counted: the plan does not list it
		return "", err
	}
	return "", nil
}

func (x *executor) delete(ctx context.Context, key string) error {
	if err := x.store.Delete(ctx, key); err != nil {
		return err // stores name the operation and the key
	}
	x.deleted.Add(1)
	return nil
}

// deleteKeys deletes keys, a few at a time; the first failure stops it.
func (x *executor) deleteKeys(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	g, gctx := archive.NewGroup(ctx)
	next := make(chan string)
	for range min(deleteWorkers, len(keys)) {
		g.Go(func() error {
			for k := range next {
				if err := x.delete(gctx, k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(next)
		for _, k := range keys {
			select {
			case next <- k:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	return g.Wait()
}

// readRunningDeltas reads the running markers of backups without a
// sentinel and returns the base of each that is a delta. A marker gone
// since the listing belongs to a push that ended; one that cannot be read
// stops the delete, which might otherwise remove the base under it.
func readRunningDeltas(ctx context.Context, s storage.Store, backups []storage.ObjectInfo, committed []string) (map[string]string, error) {
	out := map[string]string{}
	for _, oi := range backups {
		name, _, _ := strings.Cut(strings.TrimPrefix(oi.Key, archive.BackupsDir), "/")
		if oi.Key != archive.RunningKey(name) || slices.Contains(committed, name) {
			continue
		}
		rc, err := s.Get(ctx, oi.Key)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var r archive.Running
		err = json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&r)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", oi.Key, err)
		}
		if r.DeltaBase != "" {
			out[name] = r.DeltaBase
		}
	}
	return out, nil
}
