package status

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/local"
	"github.com/walnut-pg/walnut/storage/mem"
)

const (
	benchWALObjects = 100_000
	benchBackups    = 30
)

// benchKeys calls fn for the keys of a generated archive: benchWALObjects
// segments on one timeline and benchBackups backups of a few parts each.
func benchKeys(fn func(key string, size int)) {
	for i := range benchWALObjects {
		name := pgcontrol.WALFileName(1, uint64(i+1), pgcontrol.DefaultWALSegmentSize)
		fn(archive.WALKey(name, fmt.Sprintf("%016x", i), ".zst"), 4<<20)
	}
	for i := range benchBackups {
		name := fmt.Sprintf("base_%s_00000028", pgcontrol.WALFileName(1, uint64(i*3000+1), pgcontrol.DefaultWALSegmentSize))
		for p := 1; p <= 3; p++ {
			fn(archive.PartitionKey(name, p, ".zst"), 1<<30)
		}
	}
}

func benchSentinels(t testing.TB, s storage.Store) {
	putIdentity(t, s)
	for i := range benchBackups {
		name := fmt.Sprintf("base_%s_00000028", pgcontrol.WALFileName(1, uint64(i*3000+1), pgcontrol.DefaultWALSegmentSize))
		putSentinel(t, s, name, testNow.Add(-time.Duration(benchBackups-i)*24*time.Hour), 3<<30, 9<<30, i == 0)
	}
}

// BenchmarkStatus100kWAL is status's archive half (walnut.json, one
// listing of everything, every sentinel) on an archive of 100,000 WAL
// segments and 30 backups, in memory and on disk. The listing is streamed
// into sums, so memory in use stays flat however many objects there are:
// B/op counts what was allocated and collected along the way. bench/
// status.sh measures the binary's wall time and peak RSS on the same
// archive.
func BenchmarkStatus100kWAL(b *testing.B) {
	b.Run("mem", func(b *testing.B) {
		s := mem.New()
		// Empty objects: a listing reads keys, and the sizes are only
		// summed.
		benchKeys(func(key string, _ int) { put(b, s, key, 0) })
		benchSentinels(b, s)
		benchRun(b, s)
	})
	b.Run("file", func(b *testing.B) {
		root := b.TempDir()
		// Files made directly, sparse and unsynced: the store's Put would
		// fsync each of them, and the listing reads only names and sizes.
		benchKeys(func(key string, size int) {
			p := filepath.Join(root, filepath.FromSlash(key))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			f, err := os.Create(p)
			if err == nil {
				err = f.Truncate(int64(size))
			}
			if err == nil {
				err = f.Close()
			}
			if err != nil {
				b.Fatal(err)
			}
		})
		s, err := local.New(root)
		if err != nil {
			b.Fatal(err)
		}
		benchSentinels(b, s)
		benchRun(b, s)
	})
}

func benchRun(b *testing.B, s storage.Store) {
	b.ReportAllocs()
	for b.Loop() {
		r, err := Run(context.Background(), Options{Store: s, Archive: "bench", Limits: defaultLimits(), Now: fixedNow})
		if err != nil {
			b.Fatal(err)
		}
		if r.Archive.WAL.Objects != benchWALObjects || r.Archive.Backups.Count != benchBackups {
			b.Fatalf("listed %d WAL objects and %d backups: %s", r.Archive.WAL.Objects, r.Archive.Backups.Count, r.Summary)
		}
	}
}
