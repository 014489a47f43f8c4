package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/storage"
)

// Options shape one run of status.
type Options struct {
	Store storage.Store
	// Archive names the archive in output and metric labels: its prefix,
	// with any secret removed.
	Archive string
	// ConnString reaches the server (libpq keyword/value form). Empty
	// means no server: the archive half alone is reported.
	ConnString string
	// DataDir, if set, must be the server's data directory.
	DataDir string
	Limits  Limits
	// PrometheusFile, if set, receives node_exporter textfile metrics.
	PrometheusFile string
	// AlertDir, if set, holds one empty file per active alert.
	AlertDir string
	// Timeout bounds the wait for a store or server that does not answer:
	// the server half as a whole, the archive half from one answer to the
	// next (its listing may rightly take longer on a large archive).
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock ages are measured against; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Run measures the archive and the server at once, judges them, and
// writes the metrics file and alert files. A store or server that does
// not answer within opts.Timeout is reported as unreachable, not waited
// for. The report is complete even when writing an output failed; that
// failure is the error.
func Run(ctx context.Context, opts Options) (*Report, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	r := &Report{CheckedAt: now().UTC(), Alerts: []string{}}
	r.Archive.Prefix = opts.Archive
	f := findings{archive: &r.Archive, limits: opts.Limits}

	var wg sync.WaitGroup
	wg.Go(func() {
		actx, touch, stop := stallContext(ctx, timeout)
		defer stop()
		f.archiveErr = stalled(actx, scanArchive(actx, touchingStore{opts.Store, touch}, r.CheckedAt, &r.Archive))
		r.Archive.Reachable = f.archiveErr == nil || errors.Is(f.archiveErr, errNotAnArchive)
		if f.archiveErr != nil {
			msg := f.archiveErr.Error()
			r.Archive.Error = &msg
			log.Debug("archive not read", "error", f.archiveErr)
		}
	})
	if opts.ConnString != "" {
		r.Server = &ServerReport{}
		f.server = r.Server
		wg.Go(func() {
			sctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no answer for %s: %w", timeout, context.DeadlineExceeded))
			defer cancel()
			f.serverErr = stalled(sctx, queryServer(sctx, opts.ConnString, opts.DataDir, r.Server))
			if f.serverErr != nil {
				msg := f.serverErr.Error()
				r.Server.Error = &msg
				log.Debug("server not read", "error", f.serverErr)
			}
		})
	}
	wg.Wait()
	if f.serverRead() && f.archiveRead() {
		lctx, cancel := context.WithTimeout(ctx, timeout)
		lookUpLastArchived(lctx, opts.Store, r.Server)
		cancel()
	}

	checks := judge(f)
	r.Checks = checks
	r.State = OK
	for _, c := range checks {
		r.State = Worst(r.State, c.State)
		if c.Alert != "" {
			r.Alerts = append(r.Alerts, c.Alert)
		}
	}
	r.Summary = summarize(r, checks, opts.ConnString != "")
	r.DurationSeconds = time.Since(start).Seconds()

	var errs []error
	if opts.PrometheusFile != "" {
		if err := WritePrometheusFile(opts.PrometheusFile, r); err != nil {
			errs = append(errs, fmt.Errorf("write metrics to %s: %w", opts.PrometheusFile, err))
		}
	}
	if opts.AlertDir != "" {
		if err := syncAlerts(opts.AlertDir, checks); err != nil {
			errs = append(errs, fmt.Errorf("alert files in %s: %w", opts.AlertDir, err))
		}
	}
	return r, errors.Join(errs...)
}

// lookUpLastArchived asks the archive for the file pg_stat_archiver last
// archived. It asks after the server has answered, so a file archived
// while the listing ran is found rather than missed. Only a definite
// absence counts: an error leaves it unknown.
func lookUpLastArchived(ctx context.Context, s storage.Store, sr *ServerReport) {
	a := &sr.Archiver
	if a.LastArchivedWAL == nil || (sr.InRecovery && sr.ArchiveMode != "always") {
		return
	}
	_, err := archive.FindWAL(ctx, s, *a.LastArchivedWAL)
	var in bool
	switch {
	case err == nil:
		in = true
	case errors.Is(err, storage.ErrNotFound):
		in = false
	default:
		return
	}
	a.LastArchivedInArchive = &in
}

// touchingStore counts every answer of the store as progress.
type touchingStore struct {
	storage.Store
	touch func()
}

func (t touchingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := t.Store.Get(ctx, key)
	t.touch()
	return rc, err
}

func (t touchingStore) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	return t.Store.List(ctx, prefix, func(oi storage.ObjectInfo) error {
		t.touch()
		return fn(oi)
	})
}
