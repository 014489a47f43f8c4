package archive_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/local"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

func localStore(t *testing.T) storage.Store {
	t.Helper()
	s, err := local.New(filepath.Join(t.TempDir(), "archive"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantIdentity(t *testing.T, s storage.Store, sysid string) {
	t.Helper()
	id, err := archive.ReadIdentity(t.Context(), s)
	if err != nil {
		t.Fatalf("read walnut.json: %v", err)
	}
	if id.SystemIdentifier != sysid {
		t.Errorf("walnut.json names system identifier %s, want %s", id.SystemIdentifier, sysid)
	}
}

func wantForeign(t *testing.T, err error, ids ...string) {
	t.Helper()
	if !errors.Is(err, archive.ErrForeignCluster) {
		t.Fatalf("err = %v, want ErrForeignCluster", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is more than one line: %q", err)
	}
	for _, id := range ids {
		if !strings.Contains(err.Error(), id) {
			t.Errorf("error %q does not name system identifier %s", err, id)
		}
	}
}

func TestCheckIdentityCreatesThenRefuses(t *testing.T) {
	s := mem.New()
	if err := archive.CheckIdentity(t.Context(), s, 111, 15, 16<<20); err != nil {
		t.Fatalf("first check of an empty archive: %v", err)
	}
	wantIdentity(t, s, "111")
	if err := archive.CheckIdentity(t.Context(), s, 111, 0, 16<<20); err != nil {
		t.Errorf("same cluster again (as wal-push, which knows no major): %v", err)
	}
	wantForeign(t, archive.CheckIdentity(t.Context(), s, 222, 15, 16<<20), "111", "222")
	wantIdentity(t, s, "111")
}

// Clusters racing for one empty prefix: exactly one owns it, every other
// is refused naming both identifiers, and walnut.json is the owner's.
func TestCheckIdentityRace(t *testing.T) {
	for name, newStore := range map[string]func(t *testing.T) storage.Store{
		"mem":   func(*testing.T) storage.Store { return mem.New() },
		"local": localStore,
	} {
		t.Run(name, func(t *testing.T) {
			for round := range 5 {
				s := newStore(t)
				const clusters = 6
				var (
					wg    sync.WaitGroup
					start = make(chan struct{})
					errs  [clusters]error
				)
				for i := range clusters {
					wg.Go(func() {
						<-start
						errs[i] = archive.CheckIdentity(t.Context(), s, uint64(1000+i), 15, 16<<20)
					})
				}
				close(start)
				wg.Wait()
				owner := -1
				for i, err := range errs {
					if err == nil {
						if owner >= 0 {
							t.Fatalf("round %d: clusters %d and %d both own the archive", round, owner, i)
						}
						owner = i
					}
				}
				if owner < 0 {
					t.Fatalf("round %d: no cluster owns the archive: %v", round, errs)
				}
				sysid := fmt.Sprint(1000 + owner)
				wantIdentity(t, s, sysid)
				for i, err := range errs {
					if i != owner {
						wantForeign(t, err, sysid, fmt.Sprint(1000+i))
					}
				}
			}
		})
	}
}

// Two commands of one cluster starting a new archive at once both go on.
func TestCheckIdentitySameClusterRace(t *testing.T) {
	s := localStore(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = archive.CheckIdentity(t.Context(), s, 42, 15*(i%2), 16<<20) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("command %d of the same cluster: %v", i, err)
		}
	}
	wantIdentity(t, s, "42")
}

// A Create that stored walnut.json but whose answer was lost is retried,
// meets its own object as ErrExists, and reads it back as this cluster's.
func TestCheckIdentityLostAnswer(t *testing.T) {
	f := storagetest.NewFaulty(mem.New(), storagetest.Fault{Op: storagetest.OpCreate, Lost: true, Times: 1})
	s := storage.WithRetry(f, storage.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond})
	if err := archive.CheckIdentity(t.Context(), s, 7, 15, 16<<20); err != nil {
		t.Fatalf("check with the first Create's answer lost: %v", err)
	}
	if got := f.Calls(storagetest.OpCreate); got != 2 {
		t.Errorf("%d Creates, want 2: the lost one and the retry that met it", got)
	}
	wantIdentity(t, s, "7")
}

// A store that cannot create conditionally is refused, not written with a
// read-then-write that two clusters could both win.
func TestCheckIdentityNeedsCreate(t *testing.T) {
	m := mem.New()
	err := archive.CheckIdentity(t.Context(), struct{ storage.Store }{m}, 7, 15, 16<<20)
	if !errors.Is(err, storage.ErrNoCreate) {
		t.Fatalf("err = %v, want ErrNoCreate", err)
	}
	if _, err := archive.ReadIdentity(t.Context(), m); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("walnut.json after a refused check: %v, want none", err)
	}
}
