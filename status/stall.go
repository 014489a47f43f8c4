package status

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultTimeout is how long status waits for a store or server that does
// not answer.
const DefaultTimeout = 10 * time.Second

// stallContext returns a context that ends once d passes without a call to
// touch. The archive half touches it with every object listed and every
// sentinel read, so an archive of 100,000 objects on a slow store gets the
// time its listing takes, and a store that has stopped answering gets d:
// the retry decorator stops retrying when the context ends.
func stallContext(parent context.Context, d time.Duration) (ctx context.Context, touch func(), stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	t := time.AfterFunc(d, func() {
		cancel(fmt.Errorf("no answer for %s: %w", d, context.DeadlineExceeded))
	})
	return ctx, func() { t.Reset(d) }, func() { t.Stop(); cancel(nil) }
}

// stalled says why ctx ended, if it ended by stalling, in place of the
// "context canceled" a backend reports.
func stalled(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	cause := context.Cause(ctx)
	if cause == nil || errors.Is(err, cause) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, cause)
}
