package wal

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/storage/local"
)

// BenchmarkWALFetchPrefetch plays PostgreSQL's startup process: one
// wal-fetch per segment, in order, each starting a prefetch of the next
// ones as wal-fetch starts its background process; it reports segments
// fetched per second. Replay itself is left out: this is the fetching
// side alone.
func BenchmarkWALFetchPrefetch(b *testing.B) {
	const segments = 24
	src, names := benchSegments(b, segments)
	root := b.TempDir()
	ls, err := local.New(root)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range names {
		if _, err := Push(context.Background(), PushOptions{Store: ls, Codec: compression.Default(), Path: filepath.Join(src, n), Log: slog.New(slog.DiscardHandler)}); err != nil {
			b.Fatal(err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	for _, rtt := range []time.Duration{0, 20 * time.Millisecond} {
		for _, ahead := range []int{0, 4, 8, 16} {
			b.Run(fmt.Sprintf("rtt=%s/prefetch=%d", rtt, ahead), func(b *testing.B) {
				s := latencyStore{Store: ls, rtt: rtt}
				var total time.Duration
				for b.Loop() {
					b.StopTimer()
					walDir := filepath.Join(b.TempDir(), "pg_wal")
					os.MkdirAll(filepath.Join(walDir, "archive_status"), 0o700)
					dest := filepath.Join(walDir, "RECOVERYXLOG")
					dir, _ := PrefetchDir(dest)
					var wg sync.WaitGroup
					b.StartTimer()
					start := time.Now()
					for _, n := range names {
						fo := FetchOptions{Store: s, Name: n, Dest: dest, Log: log}
						if ahead == 0 {
							err = Fetch(context.Background(), fo)
						} else {
							_, err = FetchPrefetched(context.Background(), fo, dir, PrefetchWait)
						}
						if err != nil {
							b.Fatal(err)
						}
						if ahead > 0 && PrefetchWanted(dir, n, 16<<20, ahead) {
							wg.Add(1)
							go func() {
								defer wg.Done()
								Prefetch(context.Background(), PrefetchOptions{FetchOptions: fo, Dir: dir, Count: ahead, SegmentSize: 16 << 20})
							}()
						}
					}
					total += time.Since(start)
					b.StopTimer()
					wg.Wait()
					b.StartTimer()
				}
				b.ReportMetric(float64(segments*b.N)/total.Seconds(), "segments/s")
			})
		}
	}
}
