package storagetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/walnut-pg/walnut/storage"
)

// Op names a kind of Store call.
type Op int

const (
	OpPut Op = iota
	OpGet
	OpStat
	OpList
	OpDelete
	OpCreate
	numOps
)

func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpGet:
		return "get"
	case OpStat:
		return "stat"
	case OpList:
		return "list"
	case OpDelete:
		return "delete"
	case OpCreate:
		return "create"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// ErrInjected is what a Fault returns unless told otherwise. It is
// transient: neither ErrNotFound nor Permanent, so it is retried.
var ErrInjected = errors.New("storagetest: injected fault")

// Fault says which calls a Faulty store fails.
type Fault struct {
	Op Op
	// Key, if set, limits the fault to calls whose key (for List, the
	// prefix) it accepts. Calls it rejects are not counted by After.
	Key func(key string) bool
	// After is how many matching calls pass before the first failure.
	After int
	// Times is how many matching calls fail after those; 0 means all of
	// them.
	Times int
	// Err is returned by the failing calls; nil means ErrInjected.
	Err error
	// Midway, when > 0, lets a failing call get that far first, as a
	// broken connection would: Put reads that many bytes of its source
	// through to the wrapped store, a Get body (or a GetRange body)
	// yields that many bytes, List hands that many entries to its
	// callback. Otherwise the call fails before reaching the wrapped
	// store.
	Midway int64
	// Lost, for Put and Create, lets a failing call reach the wrapped
	// store and succeed there, then fail as if its answer was lost on
	// the way back.
	Lost bool

	seen int
}

// Faulty wraps a Store and fails the calls its Faults select, for tests of
// retries and of crashes halfway through. It is safe for concurrent use.
type Faulty struct {
	inner  storage.Store
	mu     sync.Mutex
	faults []*Fault
	calls  [numOps]int
	failed [numOps]int
}

var (
	_ storage.Store       = (*Faulty)(nil)
	_ storage.RangeReader = (*Faulty)(nil)
	_ storage.Creator     = (*Faulty)(nil)
	_ storage.TempSweeper = (*Faulty)(nil)
)

// NewFaulty wraps s with the given faults.
func NewFaulty(s storage.Store, faults ...Fault) *Faulty {
	f := &Faulty{inner: s}
	for _, fault := range faults {
		f.Add(fault)
	}
	return f
}

// Add arms one more fault; the first armed fault that selects a call wins.
func (f *Faulty) Add(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fault.seen = 0
	f.faults = append(f.faults, &fault)
}

// Clear disarms every fault; the counters stay.
func (f *Faulty) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// Calls returns how many calls of op were made, failed or not.
func (f *Faulty) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Failures returns how many calls of op a fault failed.
func (f *Faulty) Failures(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed[op]
}

// check counts a call and returns the fault that fails it, if any.
func (f *Faulty) check(op Op, key string) (*Fault, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	for _, fault := range f.faults {
		if fault.Op != op || (fault.Key != nil && !fault.Key(key)) {
			continue
		}
		n := fault.seen
		fault.seen++
		if n < fault.After || (fault.Times > 0 && n >= fault.After+fault.Times) {
			continue
		}
		f.failed[op]++
		err := fault.Err
		if err == nil {
			err = ErrInjected
		}
		return fault, fmt.Errorf("%s %s: %w", op, key, err)
	}
	return nil, nil
}

func (f *Faulty) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return f.store(ctx, OpPut, key, r, size, f.inner.Put)
}

// Create is its own Op, so a fault can select it apart from Put.
func (f *Faulty) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	c, ok := f.inner.(storage.Creator)
	if !ok {
		return storage.Create(ctx, f.inner, key, r, size)
	}
	return f.store(ctx, OpCreate, key, r, size, c.Create)
}

func (f *Faulty) store(ctx context.Context, op Op, key string, r io.Reader, size int64,
	put func(context.Context, string, io.Reader, int64) error) error {
	fault, err := f.check(op, key)
	switch {
	case fault == nil:
		return put(ctx, key, r, size)
	case fault.Lost:
		if perr := put(ctx, key, r, size); perr != nil {
			return perr
		}
		return err
	case fault.Midway <= 0:
		return err
	}
	if perr := put(ctx, key, &cutReader{r: r, left: fault.Midway, err: err}, size); perr == nil {
		return fmt.Errorf("storagetest: wrapped store stored %s from a reader that failed: %w", key, err)
	}
	return err
}

func (f *Faulty) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	fault, err := f.check(OpGet, key)
	if fault == nil {
		return f.inner.Get(ctx, key)
	}
	if fault.Midway <= 0 {
		return nil, err
	}
	rc, gerr := f.inner.Get(ctx, key)
	if gerr != nil {
		return nil, gerr
	}
	return struct {
		io.Reader
		io.Closer
	}{&cutReader{r: rc, left: fault.Midway, err: err}, rc}, nil
}

// GetRange counts as a Get: the same faults select it, so a Get that
// fails midway and its resumption can be failed alike.
func (f *Faulty) GetRange(ctx context.Context, key string, offset int64, version string) (*storage.Range, error) {
	rr, ok := f.inner.(storage.RangeReader)
	if !ok {
		return nil, storage.Permanent(fmt.Errorf("storagetest: %T does not read ranges", f.inner))
	}
	fault, err := f.check(OpGet, key)
	if fault == nil {
		return rr.GetRange(ctx, key, offset, version)
	}
	if fault.Midway <= 0 {
		return nil, err
	}
	rng, gerr := rr.GetRange(ctx, key, offset, version)
	if gerr != nil {
		return nil, gerr
	}
	rng.Body = struct {
		io.Reader
		io.Closer
	}{&cutReader{r: rng.Body, left: fault.Midway, err: err}, rng.Body}
	return rng, nil
}

func (f *Faulty) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	if fault, err := f.check(OpStat, key); fault != nil {
		return storage.ObjectInfo{}, err
	}
	return f.inner.Stat(ctx, key)
}

func (f *Faulty) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	fault, err := f.check(OpList, prefix)
	if fault == nil {
		return f.inner.List(ctx, prefix, fn)
	}
	if fault.Midway <= 0 {
		return err
	}
	left := fault.Midway
	stop := errors.New("stop")
	lerr := f.inner.List(ctx, prefix, func(info storage.ObjectInfo) error {
		if left == 0 {
			return stop
		}
		left--
		return fn(info)
	})
	if lerr != nil && !errors.Is(lerr, stop) {
		return lerr
	}
	return err
}

func (f *Faulty) Delete(ctx context.Context, key string) error {
	if fault, err := f.check(OpDelete, key); fault != nil {
		return err
	}
	return f.inner.Delete(ctx, key)
}

// Temps and RemoveTemp pass through, never failed.
func (f *Faulty) Temps(ctx context.Context, fn func(storage.ObjectInfo) error) error {
	return storage.Temps(ctx, f.inner, fn)
}

func (f *Faulty) RemoveTemp(ctx context.Context, key string, notAfter time.Time) (bool, error) {
	return storage.RemoveTemp(ctx, f.inner, key, notAfter)
}

func (f *Faulty) Close() error { return f.inner.Close() }

// cutReader passes left bytes of r through, then fails with err.
type cutReader struct {
	r    io.Reader
	left int64
	err  error
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if err == io.EOF {
		// The source ended before Midway: the fault still happens.
		return n, c.err
	}
	return n, err
}
