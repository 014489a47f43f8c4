package storagetest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/storage"
)

// HeapUse is what running a function did to the heap.
type HeapUse struct {
	Before    uint64 // HeapInuse before, after a collection
	Peak      uint64 // highest HeapInuse sampled meanwhile
	Allocated uint64 // bytes allocated meanwhile, freed or not
}

// Growth is how far the heap in use rose above where it started.
func (h HeapUse) Growth() int64 { return int64(h.Peak) - int64(h.Before) }

// MeasureHeap runs fn, sampling the heap every few milliseconds, for tests
// that memory stays bounded whatever the size of what streams through.
func MeasureHeap(fn func()) HeapUse {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan struct{})
	peakc := make(chan uint64)
	go func() {
		peak := before.HeapInuse
		var m runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-done:
				peakc <- peak
				return
			case <-tick.C:
			}
		}
	}()
	// fn may end the test's goroutine (t.Fatal): the sampler stops anyway.
	defer func() {
		if done != nil {
			close(done)
			<-peakc
		}
	}()
	fn()
	close(done)
	peak := <-peakc
	done = nil
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	return HeapUse{Before: before.HeapInuse, Peak: peak, Allocated: after.TotalAlloc - before.TotalAlloc}
}

// BoundedUnknownSizePut Puts size bytes of unknown size to s as "big" and
// checks that the heap in use grew by at most limit meanwhile, whatever
// size is, and that the object has the size put. buffers describes the
// backend's buffers, for the log.
func BoundedUnknownSizePut(t *testing.T, s storage.Store, size, limit int64, buffers string) {
	t.Helper()
	heap := MeasureHeap(func() {
		if err := s.Put(t.Context(), "big", RandomData(7, size), -1); err != nil {
			t.Fatal(err)
		}
	})
	grew := heap.Growth()
	t.Logf("Put of %d MiB of unknown size: peak heap in use %.1f MiB above the %.1f MiB before (%s)",
		size>>20, float64(grew)/(1<<20), float64(heap.Before)/(1<<20), buffers)
	if grew > limit {
		t.Errorf("Put of %d MiB grew the heap by %d MiB, want under %d MiB", size>>20, grew>>20, limit>>20)
	}
	info, err := s.Stat(t.Context(), "big")
	if err != nil || info.Size != size {
		t.Errorf("Stat = %+v, %v; want size %d", info, err, size)
	}
}

// walSegment is what wal-push stores: a 16 MiB segment.
const walSegment = 16 << 20

// BoundedWALPuts checks that the Puts wal-push makes hold next to nothing
// in memory, however many run at once: a small object of unknown size
// allocates little, not a whole part up front; a segment of known size is
// streamed; and one of unknown size from a source that can be rewound (as
// wal-push's compressed file can) is measured and streamed, never held.
// concurrent Puts of each run at once, as wal-push's pool runs them.
func BoundedWALPuts(t *testing.T, s storage.Store, concurrent int) {
	t.Helper()
	dir := t.TempDir()
	seg := filepath.Join(dir, "segment")
	f, err := os.Create(seg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, RandomData(11, walSegment)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	open := func() *os.File {
		f, err := os.Open(seg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	tests := []struct {
		name  string
		size  int64
		src   func() io.Reader
		limit int64 // heap growth allowed for all concurrent Puts
	}{
		{"small unknown size", 10 << 10, func() io.Reader { return RandomData(12, 10<<10) }, 4 << 20},
		{"segment of known size", walSegment, func() io.Reader { return OnlyReader{open()} }, 8 << 20},
		{"rewindable segment of unknown size", -1, func() io.Reader { return open() }, 8 << 20},
	}
	for _, tt := range tests {
		srcs := make([]io.Reader, concurrent)
		for i := range srcs {
			srcs[i] = tt.src()
		}
		errs := make([]error, concurrent)
		heap := MeasureHeap(func() {
			var wg sync.WaitGroup
			for i, src := range srcs {
				wg.Go(func() {
					errs[i] = s.Put(t.Context(), fmt.Sprintf("wal/%s-%d", strings.ReplaceAll(tt.name, " ", "-"), i), src, tt.size)
				})
			}
			wg.Wait()
		})
		for _, err := range errs {
			if err != nil {
				t.Fatalf("%s: Put: %v", tt.name, err)
			}
		}
		t.Logf("%d Puts at once, %s: peak heap in use %.1f MiB above the %.1f MiB before, %.1f MiB allocated",
			concurrent, tt.name, float64(heap.Growth())/(1<<20), float64(heap.Before)/(1<<20), float64(heap.Allocated)/(1<<20))
		if heap.Growth() > tt.limit {
			t.Errorf("%d Puts at once, %s: the heap grew by %.1f MiB, want at most %d MiB", concurrent, tt.name, float64(heap.Growth())/(1<<20), tt.limit>>20)
		}
	}
	info, err := s.Stat(t.Context(), "wal/rewindable-segment-of-unknown-size-0")
	if err != nil || info.Size != walSegment {
		t.Errorf("Stat = %+v, %v; want size %d", info, err, walSegment)
	}
}
