package storagetest

import (
	"runtime"
	"time"
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
