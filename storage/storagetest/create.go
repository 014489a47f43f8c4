package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/walnut-pg/walnut/storage"
)

func creator(t *testing.T, s storage.Store) storage.Creator {
	t.Helper()
	c, ok := s.(storage.Creator)
	if !ok {
		t.Fatalf("%T does not implement storage.Creator: two clusters could both take one archive", s)
	}
	return c
}

// wantExists checks that err is what a Create of a taken key must fail
// with: ErrExists, Permanent, one line, and never ErrNotFound.
func wantExists(t *testing.T, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s succeeded", what)
	case !errors.Is(err, storage.ErrExists):
		t.Errorf("%s = %v, want ErrExists", what, err)
	case !storage.IsPermanent(err):
		t.Errorf("%s = %v, want it Permanent", what, err)
	case errors.Is(err, storage.ErrNotFound):
		t.Errorf("%s = %v, which is also ErrNotFound", what, err)
	case strings.Contains(err.Error(), "\n"):
		t.Errorf("%s: error is more than one line: %q", what, err)
	}
}

// testCreate: Create stores a new key, of known or unknown size, empty or
// not, and a deleted key can be created again.
func testCreate(t *testing.T, s storage.Store) {
	c := creator(t, s)
	cases := []struct {
		key  string
		data []byte
		size int64
	}{
		{"walnut.json", []byte(`{"format": 1}` + "\n"), -2},
		{"a/unknown", []byte("stream of unknown size"), -1},
		{"a/empty", nil, -2},
		{"a/empty-unknown", nil, -1},
	}
	for _, tc := range cases {
		size := tc.size
		if size == -2 {
			size = int64(len(tc.data))
		}
		if err := c.Create(t.Context(), tc.key, bytes.NewReader(tc.data), size); err != nil {
			t.Fatalf("Create %s (size %d): %v", tc.key, size, err)
		}
		if got := get(t, s, tc.key); !bytes.Equal(got, tc.data) {
			t.Errorf("Get %s after Create = %q, want %q", tc.key, got, tc.data)
		}
	}
	if got := keys(list(t, s, "")); !slices.Equal(got, []string{"a/empty", "a/empty-unknown", "a/unknown", "walnut.json"}) {
		t.Errorf("List after Creates = %q", got)
	}
	if err := s.Delete(t.Context(), "walnut.json"); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(t.Context(), "walnut.json", strings.NewReader("again"), 5); err != nil {
		t.Fatalf("Create of a deleted key: %v", err)
	}
	if got := get(t, s, "walnut.json"); string(got) != "again" {
		t.Errorf("Get after Create of a deleted key = %q", got)
	}
}

// testCreateExisting: Create of a key that holds an object, stored by Put
// or by Create, fails with ErrExists and leaves the object as it was.
func testCreateExisting(t *testing.T, s storage.Store) {
	c := creator(t, s)
	put(t, s, "walnut.json", []byte("put first"))
	if err := c.Create(t.Context(), "a/b", strings.NewReader("created first"), -1); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{9, -1} {
		wantExists(t, fmt.Sprintf("Create over a Put object (size %d)", size),
			c.Create(t.Context(), "walnut.json", strings.NewReader("overwrite"), size))
		wantExists(t, fmt.Sprintf("Create over a created object (size %d)", size),
			c.Create(t.Context(), "a/b", strings.NewReader("overwrite"), size))
	}
	if got := get(t, s, "walnut.json"); string(got) != "put first" {
		t.Errorf("after refused Creates, walnut.json = %q", got)
	}
	if got := get(t, s, "a/b"); string(got) != "created first" {
		t.Errorf("after refused Creates, a/b = %q", got)
	}
	if got := keys(list(t, s, "")); !slices.Equal(got, []string{"a/b", "walnut.json"}) {
		t.Errorf("List after refused Creates = %q", got)
	}
}

// testCreateFailed: a Create whose source fails stores nothing and does
// not take the key.
func testCreateFailed(t *testing.T, s storage.Store) {
	c := creator(t, s)
	boom := errors.New("source broke")
	for _, size := range []int64{-1, 64 << 10} {
		err := c.Create(t.Context(), "walnut.json", &FailAfter{R: RandomBytes(7), N: 1000, Err: boom}, size)
		switch {
		case err == nil:
			t.Fatalf("Create (size %d) from a failing reader succeeded", size)
		case errors.Is(err, storage.ErrExists):
			t.Errorf("Create (size %d) from a failing reader = %v: the key is not taken", size, err)
		}
		wantMissing(t, s, "walnut.json")
	}
	if err := c.Create(t.Context(), "walnut.json", strings.NewReader("{}"), 2); err != nil {
		t.Fatalf("Create after failed ones: %v", err)
	}
}

// testCreateRace: of writers creating one key at once, exactly one wins,
// every other one is told ErrExists, and the object holds the winner's
// bytes whole.
func testCreateRace(t *testing.T, s storage.Store) {
	c := creator(t, s)
	const writers = 8
	for round := range 3 {
		key := fmt.Sprintf("race%d/walnut.json", round)
		var (
			start = make(chan struct{})
			wg    sync.WaitGroup
			errs  [writers]error
			datas [writers][]byte
		)
		for i := range writers {
			datas[i] = bytes.Repeat(fmt.Appendf(nil, "writer %d of round %d\n", i, round), 100+i)
			wg.Go(func() {
				<-start
				errs[i] = c.Create(t.Context(), key, bytes.NewReader(datas[i]), int64(len(datas[i])))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			if err == nil {
				if winner >= 0 {
					t.Errorf("round %d: writers %d and %d both created %s", round, winner, i, key)
				}
				winner = i
				continue
			}
			wantExists(t, fmt.Sprintf("round %d: writer %d's Create", round, i), err)
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer created %s", round, key)
		}
		if got := get(t, s, key); !bytes.Equal(got, datas[winner]) {
			t.Errorf("round %d: %s holds %d bytes that are not the winner's (writer %d)", round, key, len(got), winner)
		}
	}
}
