// Command statusgen fills an archive with generated objects for
// bench/status.sh: walnut.json, N empty WAL segments of timeline 1 and 30
// backups' sentinels, stored through walnut's own store for the prefix
// (its settings, AWS_* and the like, from the environment). The objects
// hold nothing: walnut status reads keys, sizes and sentinels only.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage/all"
)

func main() {
	prefix := flag.String("prefix", "", "archive prefix URL")
	n := flag.Int("n", 100000, "WAL segments to store")
	workers := flag.Int("workers", 32, "puts at once")
	flag.Parse()
	if err := run(*prefix, *n, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "statusgen:", err)
		os.Exit(1)
	}
}

func run(prefix string, n, workers int) error {
	ctx := context.Background()
	s, err := all.Open(ctx, prefix, os.Getenv, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	id := archive.Identity{Format: archive.FormatVersion, SystemIdentifier: "7301234567890123456", PGVersion: 150000,
		WALSegmentSize: pgcontrol.DefaultWALSegmentSize, Created: time.Now().UTC()}
	if _, err := archive.PutJSON(ctx, s, archive.IdentityKey, id); err != nil {
		return err
	}
	const backups = 30
	for i := 1; i <= backups; i++ {
		seg := pgcontrol.WALFileName(1, uint64(i*3000), pgcontrol.DefaultWALSegmentSize)
		name := "base_" + seg + "_00000028"
		sn := archive.Sentinel{Format: archive.FormatVersion, Name: name, Permanent: i == 1,
			FinishTime: time.Now().Add(-time.Duration(backups-i)*24*time.Hour - time.Hour).UTC(),
			StoredSize: 3 << 30, ExpandedSize: 9 << 30}
		if _, err := archive.PutJSON(ctx, s, archive.SentinelKey(name), sn); err != nil {
			return err
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				name := pgcontrol.WALFileName(1, uint64(i), pgcontrol.DefaultWALSegmentSize)
				key := archive.WALKey(name, fmt.Sprintf("%016x", i), ".zst")
				if err := s.Put(ctx, key, bytes.NewReader(nil), 0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return nil
}
