package storagetest

import (
	"runtime"
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
