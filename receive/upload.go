package receive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
)

// uploader stores what the receiver assembles, in order, through the same
// code as wal-push. A store failure is retried for as long as it lasts:
// nothing is skipped, and the stored position (what the server hears as
// flushed) stays where it was, so the slot keeps the WAL and, with
// --synchronous, commits wait.
type uploader struct {
	o       Options
	segs    *segments
	snapDir string
	// lastPartial is when the open segment was last uploaded.
	lastPartial time.Time
}

// run stores until ctx ends. finish asks for one last pass that stores
// everything, the open segment included, and then returns.
func (u *uploader) run(ctx context.Context, finish <-chan struct{}) error {
	tick := time.NewTicker(u.tickInterval())
	defer tick.Stop()
	for {
		final := false
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-u.segs.wake:
		case <-tick.C:
		case <-finish:
			final = true
		}
		if err := u.pass(ctx, final); err != nil {
			return err
		}
		if final {
			return nil
		}
	}
}

func (u *uploader) tickInterval() time.Duration {
	return max(min(u.o.PartialInterval/4, time.Second), 10*time.Millisecond)
}

// pass stores the finished files, then the open segment when it is due.
func (u *uploader) pass(ctx context.Context, final bool) error {
	for {
		it, ok := u.segs.next()
		if !ok {
			break
		}
		if err := u.retry(ctx, it.path, func() error { return u.storeFile(ctx, it) }); err != nil {
			return err
		}
		u.segs.done(it)
	}
	due := final || u.o.Synchronous || time.Since(u.lastPartial) >= u.o.PartialInterval
	if !due {
		return nil
	}
	name := u.segs.openName()
	if name == "" {
		return nil
	}
	snap := filepath.Join(u.snapDir, name+partialSuffix)
	end, err := u.segs.snapshot(snap)
	if err != nil || end == 0 {
		return err
	}
	defer os.Remove(snap)
	err = u.retry(ctx, snap, func() error {
		_, err := archive.ReplacePartialWAL(ctx, u.pushOptions(snap))
		return err
	})
	if err != nil {
		return err
	}
	u.lastPartial = time.Now()
	u.segs.partialStored(end)
	u.o.Log.Debug("stored the segment in progress", "name", name+partialSuffix, "lsn", end.String())
	return nil
}

func (u *uploader) pushOptions(path string) archive.PutWALOptions {
	return archive.PutWALOptions{Store: u.o.Store, Codec: u.o.Codec, Encrypt: u.o.Encrypt, Path: path, Log: u.o.Log}
}

// storeFile stores one finished file and removes it from the work
// directory.
func (u *uploader) storeFile(ctx context.Context, it storeItem) error {
	name := filepath.Base(it.path)
	var err error
	var res archive.PutWALResult
	if it.partial {
		res, err = archive.ReplacePartialWAL(ctx, u.pushOptions(it.path))
	} else {
		res, err = archive.PutWAL(ctx, u.pushOptions(it.path))
	}
	if err != nil {
		return err
	}
	if pgcontrol.IsWALFileName(name) {
		// The whole segment supersedes its partial uploads; one left
		// behind is harmless (wal-fetch prefers the whole segment).
		if err := archive.DeletePartialWALs(ctx, u.o.Store, name); err != nil {
			u.o.Log.Warn("could not delete the partial uploads of a stored segment", "name", name, "err", err)
		}
	}
	u.o.Log.Info("stored", "key", res.Key, "already_stored", res.AlreadyStored)
	return os.Remove(it.path)
}

// retry runs store until it succeeds, ctx ends or it fails in a way no
// retry can mend (another cluster's archive, different content under an
// archived name).
func (u *uploader) retry(ctx context.Context, what string, store func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = u.o.RetryInterval
	b.MaxInterval = 30 * time.Second
	for {
		err := store()
		if err == nil {
			return nil
		}
		if errors.Is(err, archive.ErrWALConflict) || errors.Is(err, archive.ErrForeignCluster) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := b.NextBackOff()
		u.o.Log.Warn("store failed; WAL stays unacknowledged and is retried", "file", filepath.Base(what), "err", err, "retry_in", d.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}
