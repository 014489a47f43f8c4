package storagetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/storage"
)

// EveryCall runs each Store method once, on keys under wal/, and returns
// their errors by the method's name. With streamSize > 0 it also Puts that
// many bytes of unknown size, as "PutStream", for backends that upload
// those another way.
func EveryCall(ctx context.Context, s storage.Store, streamSize int64) map[string]error {
	errs := map[string]error{}
	errs["Put"] = s.Put(ctx, "wal/x", strings.NewReader("x"), 1)
	if streamSize > 0 {
		errs["PutStream"] = s.Put(ctx, "wal/y", RandomData(1, streamSize), -1)
	}
	rc, err := s.Get(ctx, "wal/x")
	if err == nil {
		rc.Close()
	}
	errs["Get"] = err
	_, errs["Stat"] = s.Stat(ctx, "wal/x")
	errs["List"] = s.List(ctx, "", func(storage.ObjectInfo) error { return nil })
	errs["Delete"] = s.Delete(ctx, "wal/x")
	return errs
}

// WantPermanent checks that every call in errs failed, where, as what
// says, no retry can help: with a Permanent error of one line, containing
// each of want, that is not ErrNotFound (wal-fetch would tell PostgreSQL
// the archive lacks the segment, and recovery would end early).
func WantPermanent(t testing.TB, what string, errs map[string]error, want ...string) {
	t.Helper()
	for op, err := range errs {
		t.Logf("%s %s: %v", op, what, err)
		switch {
		case err == nil:
			t.Errorf("%s %s succeeded", op, what)
		case errors.Is(err, storage.ErrNotFound):
			t.Errorf("%s %s = %v, which is ErrNotFound: wal-fetch would end recovery early", op, what, err)
		case !storage.IsPermanent(err):
			t.Errorf("%s %s = %v, want a Permanent error", op, what, err)
		case strings.Contains(err.Error(), "\n"):
			t.Errorf("%s %s: error is more than one line: %q", op, what, err)
		}
		for _, w := range want {
			if err != nil && !strings.Contains(err.Error(), w) {
				t.Errorf("%s %s = %q, want it to say %q", op, what, err, w)
			}
		}
	}
}

// WantRetryable checks that every call in errs failed, where, as what
// says, a later try may succeed: with an error that is neither Permanent
// nor ErrNotFound.
func WantRetryable(t testing.TB, what string, errs map[string]error) {
	t.Helper()
	for op, err := range errs {
		t.Logf("%s %s: %v", op, what, err)
		if err == nil || storage.IsPermanent(err) || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s %s = %v, want a retryable error", op, what, err)
		}
	}
}

// NoSecret checks that err, from op, shows none of secrets.
func NoSecret(t testing.TB, op string, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("%s error shows a secret: %v", op, err)
		}
	}
}
