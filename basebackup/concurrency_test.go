package basebackup

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/restore"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
)

// inFlight counts partition transfers running at once. Each is slowed a
// little, so workers that could overlap do.
type inFlight struct {
	storage.Store
	mu               sync.Mutex
	puts, gets       int
	maxPuts, maxGets int
}

// Create passes through: walnut.json is created with it.
func (s *inFlight) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	return storage.Create(ctx, s.Store, key, r, size)
}

func isPartition(key string) bool { return strings.Contains(key, "/part_") }

func (s *inFlight) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if !isPartition(key) {
		return s.Store.Put(ctx, key, r, size)
	}
	s.mu.Lock()
	s.puts++
	s.maxPuts = max(s.maxPuts, s.puts)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.puts--
		s.mu.Unlock()
	}()
	time.Sleep(20 * time.Millisecond)
	return s.Store.Put(ctx, key, r, size)
}

// A Get is in flight until its body is closed: that is when the restore
// is done with the partition.
func (s *inFlight) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if !isPartition(key) {
		return s.Store.Get(ctx, key)
	}
	s.mu.Lock()
	s.gets++
	s.maxGets = max(s.maxGets, s.gets)
	s.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	rc, err := s.Store.Get(ctx, key)
	if err != nil {
		s.done()
		return nil, err
	}
	return &closeHook{ReadCloser: rc, hook: s.done}, nil
}

func (s *inFlight) done() {
	s.mu.Lock()
	s.gets--
	s.mu.Unlock()
}

type closeHook struct {
	io.ReadCloser
	hook func()
	once sync.Once
}

func (c *closeHook) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.hook)
	return err
}

// smallCluster writes a data directory of many small relation files and
// a real pg_control.
func smallCluster(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 24 {
		b := make([]byte, 64<<10)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		p := filepath.Join(dir, "base", "5", fmt.Sprint(16384+i))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctl, err := os.ReadFile(filepath.Join("..", "testdata", "pgcontrol", "pg15_plain.control"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "global"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"global/pg_control": ctl, "PG_VERSION": []byte("15\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// WALNUT_UPLOAD_CONCURRENCY and WALNUT_DOWNLOAD_CONCURRENCY bound how many
// partitions are stored and fetched at once, and that many do run at once.
func TestConcurrencyBoundsPartitionTransfers(t *testing.T) {
	const workers = 3
	dir := smallCluster(t)
	s := &inFlight{Store: mem.New()}
	enc := archive.Encoding{Codec: compression.Default()}
	name := "base_000000010000000000000002_00000028"
	p := &packer{store: s, enc: enc, name: name, limit: 64 << 10, log: slog.New(slog.DiscardHandler)}
	if err := p.run(t.Context(), dir, nil, "PG_15_", workers); err != nil {
		t.Fatal(err)
	}
	if n := p.next.Load(); n < 2*workers {
		t.Fatalf("%d partitions; the test needs several per worker", n)
	}
	if s.maxPuts > workers || s.maxPuts < 2 {
		t.Errorf("backup: %d partitions stored at once with concurrency %d; want between 2 and %d", s.maxPuts, workers, workers)
	}

	ctl, err := os.ReadFile(filepath.Join(dir, archive.ControlFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.putControl(t.Context(), "START WAL LOCATION: 0/2000028\n", "", ctl); err != nil {
		t.Fatal(err)
	}
	sn := &archive.Sentinel{Format: archive.FormatVersion, Name: name, Partitions: int(p.next.Load()), Compression: enc.Codec.Name(),
		ManifestKey: archive.ManifestKey(name, enc.Ext()), ControlKey: archive.ControlKey(name, enc.Ext()), FinishTime: time.Now()}
	if _, err := archive.PutManifest(t.Context(), s, sn.ManifestKey, enc, &archive.Manifest{Format: archive.FormatVersion, Name: name, Files: p.files}); err != nil {
		t.Fatal(err)
	}
	if err := archive.CheckIdentity(t.Context(), s, 7, 150000, 16<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.PutJSON(t.Context(), s, archive.SentinelKey(name), sn); err != nil {
		t.Fatal(err)
	}
	res, err := restore.Run(t.Context(), restore.Options{Store: s, Dest: filepath.Join(t.TempDir(), "restore"), Name: "LATEST",
		Concurrency: workers, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 24+2+1 { // relations, PG_VERSION and pg_control, backup_label
		t.Errorf("restored %d files, want 27", res.Files)
	}
	if s.maxGets > workers || s.maxGets < 2 {
		t.Errorf("restore: %d partitions fetched at once with concurrency %d; want between 2 and %d", s.maxGets, workers, workers)
	}
}
