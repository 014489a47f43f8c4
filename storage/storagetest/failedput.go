package storagetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/walnut-pg/walnut/storage"
)

// FailedLargePut is the suite's FailedPut for an upload in many parts: s,
// configured with parts small enough, gets Puts of unknown size whose
// source fails after failAt bytes, several parts in. Each must return the
// source's error, having read up to it, and leave an old object as it was
// and no new one; a later Put of the same key stores only its own data.
// Leftover parts are the backend's to check, as only it can see them.
func FailedLargePut(t *testing.T, s storage.Store, failAt int64) {
	t.Helper()
	put(t, s, "wal/seg", []byte("old content"))
	boom := errors.New("compression pipeline broke")
	for _, key := range []string{"wal/seg", "wal/new"} {
		src := &FailAfter{R: RandomBytes(3), N: failAt, Err: boom}
		if err := s.Put(t.Context(), key, src, -1); !errors.Is(err, boom) {
			t.Errorf("Put %s from a failing reader = %v, want the reader's error", key, err)
		}
		if src.N != 0 {
			t.Errorf("Put %s stopped reading %d bytes before the failure", key, src.N)
		}
	}
	if got := get(t, s, "wal/seg"); string(got) != "old content" {
		t.Errorf("after failed Put, wal/seg holds %d bytes, want the old content", len(got))
	}
	wantMissing(t, s, "wal/new")
	if got := keys(list(t, s, "")); !slices.Equal(got, []string{"wal/seg"}) {
		t.Errorf("List after failed Puts = %q, want only wal/seg", got)
	}

	data := bytes.Repeat([]byte("0123456789abcdef"), 5<<16)
	put(t, s, "wal/new", data)
	if got := get(t, s, "wal/new"); !bytes.Equal(got, data) {
		t.Errorf("Put after a failed one stored %d bytes, want %d", len(got), len(data))
	}
}
