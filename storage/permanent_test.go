package storage

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestPermanent(t *testing.T) {
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	cause := errors.New("access denied")
	err := fmt.Errorf("get wal/x: %w", Permanent(cause))
	if !IsPermanent(err) || !errors.Is(err, cause) || err.Error() != "get wal/x: access denied" {
		t.Errorf("wrapped Permanent: IsPermanent=%v Is=%v text=%q", IsPermanent(err), errors.Is(err, cause), err)
	}
	if IsPermanent(cause) || IsPermanent(nil) {
		t.Error("an unmarked error is Permanent")
	}
	if p := Permanent(Permanent(cause)); !IsPermanent(p) || !errors.Is(p, cause) || p.Error() != cause.Error() {
		t.Errorf("marking twice gives %v", p)
	}
}

func TestRetryable(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	transient := errors.New("connection reset")
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"transient", live, transient, true},
		{"attempt timed out, caller still waiting", live, fmt.Errorf("stat x: %w", context.DeadlineExceeded), true},
		{"not found", live, fmt.Errorf("get x: %w", ErrNotFound), false},
		{"permanent", live, fmt.Errorf("get x: %w", Permanent(transient)), false},
		{"caller gave up", done, transient, false},
		{"caller gave up, context error", done, context.Canceled, false},
	}
	for _, tt := range tests {
		if got := retryable(tt.ctx, tt.err); got != tt.want {
			t.Errorf("%s: retryable(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
