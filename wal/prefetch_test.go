package wal

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

// archivedPGWAL pushes n segments into a store and returns it with an
// empty pg_wal to restore into and the segment names and contents.
func archivedPGWAL(t *testing.T, n int) (*storagetest.Faulty, string, []string, map[string][]byte) {
	t.Helper()
	src, names := fixture.PGWAL(t, n, nil)
	s := storagetest.NewFaulty(mem.New())
	content := map[string][]byte{}
	for _, name := range names {
		p := filepath.Join(src, name)
		if _, err := push(t, s, p); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		content[name] = b
	}
	dst, _ := fixture.PGWAL(t, 0, nil)
	return s, dst, names, content
}

func prefetchOpts(s *storagetest.Faulty, dir, after string, n int) PrefetchOptions {
	return PrefetchOptions{
		FetchOptions: FetchOptions{Store: s, Name: after, Log: slog.New(slog.DiscardHandler)},
		Dir:          dir,
		Count:        n,
		SegmentSize:  16 << 20,
	}
}

func fetchOpts(s *storagetest.Faulty, name, dest string) FetchOptions {
	return FetchOptions{Store: s, Name: name, Dest: dest, Log: slog.New(slog.DiscardHandler)}
}

func TestPrefetchHandsOverWholeSegments(t *testing.T) {
	s, walDir, names, content := archivedPGWAL(t, 5)
	dir, ok := PrefetchDir(filepath.Join(walDir, "RECOVERYXLOG"))
	if !ok {
		t.Fatal("pg_wal not recognised")
	}
	if _, ok := PrefetchDir(filepath.Join(t.TempDir(), "RECOVERYXLOG")); ok {
		t.Fatal("a directory without archive_status taken for pg_wal")
	}
	res, err := Prefetch(context.Background(), prefetchOpts(s, dir, names[0], 3))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Fetched) != 3 || res.Missing != 0 || res.Failed != 0 {
		t.Fatalf("prefetch of 3 after %s: %+v", names[0], res)
	}
	// Again: nothing new to fetch; past the archive's end is not found.
	res, err = Prefetch(context.Background(), prefetchOpts(s, dir, names[1], 5))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Fetched) != 1 || res.Present != 2 || res.Missing != 2 {
		t.Fatalf("second prefetch: %+v", res)
	}

	gets := s.Calls(storagetest.OpGet)
	dest := filepath.Join(walDir, "RECOVERYXLOG")
	for _, name := range names[2:] {
		from, err := FetchPrefetched(context.Background(), fetchOpts(s, name, dest), dir, time.Second)
		if err != nil || !from {
			t.Fatalf("fetch of prefetched %s: from prefetch %v, %v", name, from, err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, content[name]) {
			t.Fatalf("prefetched %s handed over with other bytes", name)
		}
	}
	if s.Calls(storagetest.OpGet) != gets {
		t.Errorf("prefetched segments were fetched from the store again")
	}
	if _, err := os.Stat(filepath.Join(dir, names[1])); err != nil {
		t.Errorf("%s prefetched but gone before asked for: %v", names[1], err)
	}
	// A prefetch after names[4] drops what recovery has passed.
	if _, err := Prefetch(context.Background(), prefetchOpts(s, dir, names[4], 1)); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("prefetch directory after recovery passed everything: %v", left)
	}
}

// What a prefetch that died leaves (a temporary file, a lock file) is
// never handed over and is cleaned away; a file under a final name that is
// not a whole segment is never handed over either.
func TestPrefetchLeftoversOfADeadPrefetch(t *testing.T) {
	s, walDir, names, content := archivedPGWAL(t, 4)
	dest := filepath.Join(walDir, "RECOVERYXLOG")
	dir, _ := PrefetchDir(dest)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	half := content[names[1]][:8<<20]
	tmp := filepath.Join(dir, "."+names[1]+".walnut-tmp-123")
	lock := filepath.Join(dir, "."+names[1]+".lock")
	for p, b := range map[string][]byte{tmp: half, lock: nil, filepath.Join(dir, names[2]): half} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	from, err := FetchPrefetched(context.Background(), fetchOpts(s, names[2], dest), dir, time.Second)
	if err != nil || from {
		t.Fatalf("fetch with a truncated prefetched file: from prefetch %v, %v", from, err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, content[names[2]]) {
		t.Fatalf("fetch beside a truncated prefetched file wrote other bytes")
	}
	if _, err := Prefetch(context.Background(), prefetchOpts(s, dir, names[0], 1)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tmp, lock} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left by a dead prefetch is still there", filepath.Base(p))
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, names[1])); !bytes.Equal(got, content[names[1]]) {
		t.Errorf("%s not prefetched whole after a dead prefetch of it", names[1])
	}
}

// wal-fetch waits for a prefetch of its segment that is under way instead
// of fetching it a second time.
func TestPrefetchWaitsForOneUnderWay(t *testing.T) {
	s, walDir, names, content := archivedPGWAL(t, 2)
	dest := filepath.Join(walDir, "RECOVERYXLOG")
	dir, _ := PrefetchDir(dest)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := lockSegment(context.Background(), dir, names[1], 0)
	if err != nil || lock == nil {
		t.Fatalf("lock: %v", err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		os.WriteFile(filepath.Join(dir, names[1]), content[names[1]], 0o600)
		lock.release()
	}()
	gets := s.Calls(storagetest.OpGet)
	from, err := FetchPrefetched(context.Background(), fetchOpts(s, names[1], dest), dir, time.Minute)
	if err != nil || !from {
		t.Fatalf("fetch while a prefetch is under way: from prefetch %v, %v", from, err)
	}
	if s.Calls(storagetest.OpGet) != gets {
		t.Error("fetched from the store while a prefetch was under way")
	}

	// A prefetch that never finishes costs at most the wait.
	lock, _ = lockSegment(context.Background(), dir, names[0], 0)
	defer lock.release()
	start := time.Now()
	from, err = FetchPrefetched(context.Background(), fetchOpts(s, names[0], dest), dir, 200*time.Millisecond)
	if err != nil || from || time.Since(start) > 10*time.Second {
		t.Fatalf("fetch past a stuck prefetch: from prefetch %v, %v after %s", from, err, time.Since(start))
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, content[names[0]]) {
		t.Fatal("fetch past a stuck prefetch wrote other bytes")
	}
}

// Two wal-fetches for one prefetched segment at once both get it whole:
// one by the rename, the other from the store.
func TestPrefetchTwoFetchesAtOnce(t *testing.T) {
	s, walDir, names, content := archivedPGWAL(t, 2)
	dir, _ := PrefetchDir(filepath.Join(walDir, "RECOVERYXLOG"))
	for round := 0; round < 20; round++ {
		if _, err := Prefetch(context.Background(), prefetchOpts(s, dir, names[0], 1)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dest := filepath.Join(walDir, "DEST"+string(rune('A'+i)))
				_, errs[i] = FetchPrefetched(context.Background(), fetchOpts(s, names[1], dest), dir, time.Minute)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d fetch %d: %v", round, i, err)
			}
			if got, _ := os.ReadFile(filepath.Join(walDir, "DEST"+string(rune('A'+i)))); !bytes.Equal(got, content[names[1]]) {
				t.Fatalf("round %d fetch %d wrote other bytes", round, i)
			}
		}
	}
}

func TestClearPrefetchedAfterRecovery(t *testing.T) {
	s, walDir, names, _ := archivedPGWAL(t, 3)
	dir, _ := PrefetchDir(filepath.Join(walDir, "RECOVERYXLOG"))
	if _, err := Prefetch(context.Background(), prefetchOpts(s, dir, names[0], 2)); err != nil {
		t.Fatal(err)
	}
	data := filepath.Dir(walDir)
	if err := os.WriteFile(filepath.Join(data, "standby.signal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fixture.WriteSegment(t, filepath.Join(walDir, names[0]), fixture.Plain, 1)
	if _, err := poolPush(s, filepath.Join(walDir, names[0]), 1, "x"); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 2 {
		t.Fatalf("wal-push on a standby touched its prefetched segments: %v", left)
	}
	os.Remove(filepath.Join(data, "standby.signal"))
	if _, err := poolPush(s, filepath.Join(walDir, names[0]), 1, "x"); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("prefetched segments left after recovery ended and wal-push ran: %v", left)
	}
}

// A prefetch is started again only once fewer than half of the segments
// ahead are fetched or being fetched.
func TestPrefetchWanted(t *testing.T) {
	s, walDir, names, _ := archivedPGWAL(t, 6)
	dest := filepath.Join(walDir, "RECOVERYXLOG")
	dir, _ := PrefetchDir(dest)
	const seg = 16 << 20
	if !PrefetchWanted(dir, names[0], seg, 4) {
		t.Fatal("nothing prefetched, yet no prefetch wanted")
	}
	if _, err := Prefetch(context.Background(), prefetchOpts(s, dir, names[0], 4)); err != nil {
		t.Fatal(err)
	}
	if PrefetchWanted(dir, names[0], seg, 4) {
		t.Fatal("4 of 4 segments ahead prefetched, yet a prefetch wanted")
	}
	for i, want := range []bool{false, false, true} {
		if _, err := FetchPrefetched(context.Background(), fetchOpts(s, names[i+1], dest), dir, time.Second); err != nil {
			t.Fatal(err)
		}
		if got := PrefetchWanted(dir, names[i+1], seg, 4); got != want {
			t.Fatalf("after taking %s: prefetch wanted %v, want %v", names[i+1], got, want)
		}
	}
	// A segment being fetched counts as ahead; a lock left by a dead
	// prefetch does not.
	lock, err := lockSegment(context.Background(), dir, names[5], 0)
	if err != nil || lock == nil {
		t.Fatal(err)
	}
	if PrefetchWanted(dir, names[3], seg, 4) {
		t.Fatal("2 of 4 segments ahead prefetched or being fetched, yet a prefetch wanted")
	}
	lock.f.Close() // as if its holder died: the file stays, the lock goes
	if !PrefetchWanted(dir, names[3], seg, 4) {
		t.Fatal("a dead prefetch's lock file counted as a segment being fetched")
	}
}
