package wal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/local"
)

// latencyStore adds a round trip to every call, as an object store some
// distance away would. For benchmarks only: the real latency tests run
// MinIO behind toxiproxy.
type latencyStore struct {
	storage.Store
	rtt time.Duration
}

func (l latencyStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	time.Sleep(l.rtt)
	return l.Store.Put(ctx, key, r, size)
}

func (l latencyStore) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	time.Sleep(l.rtt)
	return storage.Create(ctx, l.Store, key, r, size)
}

func (l latencyStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	time.Sleep(l.rtt)
	return l.Store.Get(ctx, key)
}

func (l latencyStore) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	time.Sleep(l.rtt)
	return l.Store.Stat(ctx, key)
}

func (l latencyStore) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	time.Sleep(l.rtt)
	return l.Store.List(ctx, prefix, fn)
}

// benchSegments writes n 16 MiB segments that compress about as pgbench's
// WAL does (to roughly a third), marked ready, into a fake pg_wal.
func benchSegments(b *testing.B, n int) (string, []string) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	return fixture.PGWAL(b, n, func(int) []byte {
		body := make([]byte, fixture.SegmentSize)
		for off := 0; off < len(body); off += 256 {
			// A third of each 256-byte run random, the rest repeated.
			for j := off; j < off+85 && j < len(body); j++ {
				body[j] = byte(rng.Uint32())
			}
		}
		return body
	})
}

// BenchmarkWALPushPool plays PostgreSQL's archiver: one wal-push per ready
// segment, in order, each renaming .ready to .done after it returns; it
// reports segments archived per second.
func BenchmarkWALPushPool(b *testing.B) {
	const segments = 24
	walDir, names := benchSegments(b, segments)
	for _, rtt := range []time.Duration{0, 20 * time.Millisecond} {
		for _, pool := range []int{1, 4, 8} {
			b.Run(fmt.Sprintf("rtt=%s/pool=%d", rtt, pool), func(b *testing.B) {
				var total time.Duration
				for b.Loop() {
					b.StopTimer()
					root := b.TempDir()
					ls, err := local.New(root)
					if err != nil {
						b.Fatal(err)
					}
					s := latencyStore{Store: ls, rtt: rtt}
					status := filepath.Join(walDir, "archive_status")
					os.RemoveAll(walStatePath(walDir, archivedDirName))
					for _, n := range names {
						os.Remove(filepath.Join(status, n+".done"))
						os.WriteFile(filepath.Join(status, n+".ready"), nil, 0o600)
					}
					b.StartTimer()
					start := time.Now()
					for _, n := range names {
						_, err := PushPool(context.Background(), PoolOptions{
							PushOptions: PushOptions{Store: s, Codec: compression.Default(), Path: filepath.Join(walDir, n), Log: slog.New(slog.DiscardHandler)},
							PoolSize:    pool,
							ArchiveID:   root,
						})
						if err != nil {
							b.Fatal(err)
						}
						os.Rename(filepath.Join(status, n+".ready"), filepath.Join(status, n+".done"))
					}
					total += time.Since(start)
				}
				b.ReportMetric(float64(segments*b.N)/total.Seconds(), "segments/s")
			})
		}
	}
}
