package receive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// Options is what wal-receive needs.
type Options struct {
	Store   storage.Store
	Codec   compression.Codec
	Encrypt *crypto.Recipients
	// ConnString is a libpq connection string or URL; the replication
	// parameter is set here.
	ConnString string
	Slot       string
	// Dir is the work directory: the segment being written and the
	// finished ones not yet stored. Its contents are thrown away at start,
	// since the slot keeps everything not yet stored.
	Dir             string
	PartialInterval time.Duration
	// Synchronous stores the segment in progress as soon as WAL arrives,
	// so the flush position the server hears moves at once.
	Synchronous bool
	// StatusInterval is how often the server hears the positions anyway.
	StatusInterval time.Duration
	// RetryInterval is the first wait after a failure (connection or
	// store); waits grow to 30 s.
	RetryInterval time.Duration
	// StopTimeout bounds the final upload after ctx ends.
	StopTimeout time.Duration
	Log         *slog.Logger
}

// partialSuffix names the segment being written, in the work directory
// as in the archive.
const partialSuffix = ".partial"

var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// ErrSetup marks a failure that retrying cannot mend: a bad
// setting, a refused login, a server or archive that does not fit.
var ErrSetup = errors.New("wal-receive cannot start")

// Run streams WAL from the server into the archive until ctx ends,
// then stores what it holds, the segment in progress included, and
// returns nil. A dropped connection is retried with backoff and resumes
// where it stopped; a store outage stops the acknowledgements until the
// store is back.
func Run(ctx context.Context, o Options) error {
	if !slotName.MatchString(o.Slot) {
		return fmt.Errorf("%w: --slot %q: want 1 to 63 lower-case letters, digits or underscores", ErrSetup, o.Slot)
	}
	if o.PartialInterval <= 0 {
		return fmt.Errorf("%w: --partial-interval must be positive", ErrSetup)
	}
	if o.StatusInterval <= 0 {
		o.StatusInterval = time.Second
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = time.Minute
	}
	snapDir := filepath.Join(o.Dir, "snapshot")
	if err := resetWorkDir(o.Dir, snapDir); err != nil {
		return err
	}
	segs := newSegments(o.Dir)
	up := &uploader{o: o, segs: segs, snapDir: snapDir}

	// The uploader outlives ctx by StopTimeout, for the final upload.
	upCtx, upCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer upCancel()
	finish := make(chan struct{})
	upDone := make(chan error, 1)
	go func() {
		err := up.run(upCtx, finish)
		if err != nil {
			segs.fail(err)
		}
		upDone <- err
	}()

	r := &receiver{o: o, segs: segs}
	err := r.loop(ctx)
	if err != nil {
		upCancel()
		<-upDone
		segs.closeFile()
		return err
	}
	o.Log.Info("stopping: storing what has arrived")
	close(finish)
	timer := time.NewTimer(o.StopTimeout)
	defer timer.Stop()
	select {
	case err = <-upDone:
	case <-timer.C:
		upCancel()
		<-upDone
		err = fmt.Errorf("the store did not take the last WAL within %s; the slot keeps it for the next start", o.StopTimeout)
	}
	segs.closeFile()
	if err != nil {
		return err
	}
	written, stored := segs.positions()
	o.Log.Info("stopped", "received", written.String(), "stored", stored.String())
	return nil
}

// resetWorkDir empties what an earlier run left: nothing in it is needed,
// since the slot holds all WAL that was not stored.
func resetWorkDir(dir, snapDir string) error {
	if err := os.MkdirAll(snapDir, 0o700); err != nil {
		return fmt.Errorf("%w: work directory: %v", ErrSetup, err)
	}
	for _, d := range []string{dir, snapDir} {
		entries, err := os.ReadDir(d)
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := e.Name()
			if e.Type().IsRegular() && (pgcontrol.IsArchivableName(name)) {
				if err := os.Remove(filepath.Join(d, name)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// loop connects, streams and reconnects until ctx ends (nil) or a
// failure no retry mends.
func (r *receiver) loop(ctx context.Context) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = r.o.RetryInterval
	b.MaxInterval = 30 * time.Second
	for {
		err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if f := r.segs.failure(); f != nil {
			return f
		}
		if errors.Is(err, ErrSetup) && !r.connected {
			return err
		}
		if r.streamed {
			b.Reset()
			r.streamed = false
		}
		d := b.NextBackOff()
		r.o.Log.Warn("replication stopped; reconnecting", "err", err, "retry_in", d.Round(time.Millisecond).String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}
