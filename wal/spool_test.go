package wal

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
)

// sizeRecorder remembers the size each Put was given.
type sizeRecorder struct {
	storage.Store
	mu    sync.Mutex
	sizes map[string]int64
}

func (r *sizeRecorder) Put(ctx context.Context, key string, src io.Reader, size int64) error {
	r.mu.Lock()
	r.sizes[key] = size
	r.mu.Unlock()
	return r.Store.Put(ctx, key, src, size)
}

func (r *sizeRecorder) Create(ctx context.Context, key string, src io.Reader, size int64) error {
	return storage.Create(ctx, r.Store, key, src, size)
}

// wal-push encodes a segment once, into an unlinked spool file, and
// hands the store its size, so a cloud store need not read it through
// twice; a spool directory it cannot write only costs that saving.
func TestPushSpoolsOnceOrStreams(t *testing.T) {
	for _, tc := range []struct {
		name     string
		spoolDir func(t *testing.T) string
		spooled  bool
	}{
		{"spooled", func(t *testing.T) string { return t.TempDir() }, true},
		{"spool dir missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "gone") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := fixture.Segment(t, dir, segName, 0x5A)
			s := &sizeRecorder{Store: mem.New(), sizes: map[string]int64{}}
			spoolDir := tc.spoolDir(t)
			var logged bytes.Buffer
			res, err := Push(context.Background(), PushOptions{Store: s, Codec: compression.Default(), Path: p,
				SpoolDir: spoolDir, Log: slog.New(slog.NewTextHandler(&logged, nil))})
			if err != nil {
				t.Fatal(err)
			}
			size, ok := s.sizes[res.Key]
			if !ok {
				t.Fatalf("no Put of %s", res.Key)
			}
			info, err := s.Stat(context.Background(), res.Key)
			if err != nil {
				t.Fatal(err)
			}
			if res.Stored != info.Size {
				t.Errorf("push reports %d bytes stored, the object holds %d", res.Stored, info.Size)
			}
			if tc.spooled {
				if size != info.Size {
					t.Errorf("Put given size %d, want the encoded size %d", size, info.Size)
				}
				if left, _ := os.ReadDir(spoolDir); len(left) != 0 {
					t.Errorf("spool dir holds %d entries after the push", len(left))
				}
				if logged.Len() != 0 {
					t.Errorf("logged: %s", logged.String())
				}
			} else {
				if size != -1 {
					t.Errorf("Put given size %d without a spool, want -1 (streamed)", size)
				}
				if !strings.Contains(logged.String(), "cannot spool") {
					t.Errorf("no warning about the spool: %q", logged.String())
				}
			}
			dest := filepath.Join(dir, "fetched")
			if err := Fetch(context.Background(), FetchOptions{Store: s, Name: segName, Dest: dest}); err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(p)
			if got, _ := os.ReadFile(dest); !bytes.Equal(got, want) {
				t.Fatal("fetched segment differs from the pushed one")
			}
		})
	}
}
