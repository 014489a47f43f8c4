package storagetest_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

func TestFaultyWithoutFaultsConforms(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return storagetest.NewFaulty(mem.New()) })
}

func TestFaultyAfterTimesKey(t *testing.T) {
	custom := errors.New("disk on fire")
	f := storagetest.NewFaulty(mem.New(), storagetest.Fault{
		Op:    storagetest.OpDelete,
		Key:   func(k string) bool { return strings.HasPrefix(k, "wal/") },
		After: 2,
		Times: 2,
		Err:   custom,
	})
	var got []bool
	for _, key := range []string{"wal/1", "other", "wal/2", "wal/3", "other", "wal/4", "wal/5"} {
		got = append(got, f.Delete(t.Context(), key) != nil)
	}
	want := []bool{false, false, false, true, false, true, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("failed calls = %v, want %v", got, want)
		}
	}
	if f.Calls(storagetest.OpDelete) != 7 || f.Failures(storagetest.OpDelete) != 2 || f.Calls(storagetest.OpPut) != 0 {
		t.Errorf("counters: calls %d failures %d", f.Calls(storagetest.OpDelete), f.Failures(storagetest.OpDelete))
	}
	f.Add(storagetest.Fault{Op: storagetest.OpStat})
	if _, err := f.Stat(t.Context(), "x"); !errors.Is(err, storagetest.ErrInjected) || storage.IsPermanent(err) || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("default fault = %v, want a transient ErrInjected", err)
	}
	f.Clear()
	if _, err := f.Stat(t.Context(), "x"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after Clear: %v, want the wrapped store's ErrNotFound", err)
	}
}

func TestFaultyMidway(t *testing.T) {
	m := mem.New()
	f := storagetest.NewFaulty(m,
		storagetest.Fault{Op: storagetest.OpPut, Midway: 3},
		storagetest.Fault{Op: storagetest.OpGet, Midway: 2},
		storagetest.Fault{Op: storagetest.OpList, Midway: 1})
	if err := f.Put(t.Context(), "k", strings.NewReader("abcdef"), -1); !errors.Is(err, storagetest.ErrInjected) {
		t.Errorf("Put = %v, want ErrInjected", err)
	}
	if _, err := m.Stat(t.Context(), "k"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a Put failed midway stored something: %v", err)
	}
	for _, k := range []string{"a", "b"} {
		if err := m.Put(t.Context(), k, strings.NewReader("value"), -1); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := f.Get(t.Context(), "a")
	if err != nil {
		t.Fatalf("Get failing midway failed at once: %v", err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if string(data) != "va" || !errors.Is(err, storagetest.ErrInjected) {
		t.Errorf("body gave %q, %v; want %q then ErrInjected", data, err, "va")
	}
	var seen []string
	err = f.List(t.Context(), "", func(info storage.ObjectInfo) error {
		seen = append(seen, info.Key)
		return nil
	})
	if !errors.Is(err, storagetest.ErrInjected) || len(seen) != 1 || seen[0] != "a" {
		t.Errorf("List gave %q, %v; want [a] then ErrInjected", seen, err)
	}
}

// Create passes through to the wrapped store, and its faults select it
// apart from Put.
func TestFaultyCreate(t *testing.T) {
	m := mem.New()
	f := storagetest.NewFaulty(m, storagetest.Fault{Op: storagetest.OpCreate, Times: 1})
	if err := f.Put(t.Context(), "a", strings.NewReader("a"), 1); err != nil {
		t.Fatalf("Put with a Create fault armed: %v", err)
	}
	if err := f.Create(t.Context(), "b", strings.NewReader("b"), 1); !errors.Is(err, storagetest.ErrInjected) {
		t.Fatalf("first Create = %v, want the injected fault", err)
	}
	if _, err := m.Stat(t.Context(), "b"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a Create failed before the store stored something: %v", err)
	}
	if err := f.Create(t.Context(), "b", strings.NewReader("b"), 1); err != nil {
		t.Fatalf("second Create: %v", err)
	}
	if err := f.Create(t.Context(), "b", strings.NewReader("c"), 1); !errors.Is(err, storage.ErrExists) {
		t.Errorf("Create of a taken key through Faulty = %v, want ErrExists", err)
	}
	if got := f.Calls(storagetest.OpCreate); got != 3 {
		t.Errorf("%d Creates counted, want 3", got)
	}
}
