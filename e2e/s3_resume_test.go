package e2e

import (
	"bytes"
	"crypto/sha256"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/internal/testserver"
)

// The link to the store breaks in the middle of an object's body, as
// toxiproxy's limit_data (every connection closed after a few hundred
// KiB) and reset_peer (connections reset) break it. One blip must not end
// archive recovery or throw away a restore: the read resumes where it
// broke once the link heals within the retry window (about 15 s of
// waiting), and fails, on one line, when it never heals.

// cutEveryConnection closes each connection through the proxy once it has
// carried bytes towards walnut.
func (f *s3Faults) cutEveryConnection(t *testing.T, bytes int) {
	f.proxy.AddToxic(t, testserver.Toxic{Name: "cut", Type: "limit_data", Stream: "downstream",
		Attributes: map[string]any{"bytes": bytes}})
}

func (f *s3Faults) resetEveryConnection(t *testing.T) {
	f.proxy.AddToxic(t, testserver.Toxic{Name: "reset", Type: "reset_peer", Stream: "downstream",
		Attributes: map[string]any{"timeout": 0}})
}

func (f *s3Faults) slowDownstream(t *testing.T, kbPerSec int) {
	f.proxy.AddToxic(t, testserver.Toxic{Name: "slow-down", Type: "bandwidth", Stream: "downstream",
		Attributes: map[string]any{"rate": kbPerSec}})
}

// after runs fn after d in its own goroutine; the returned wait blocks
// until fn has run, so that one case's toxics never reach the next.
func after(d time.Duration, fn func()) (wait func()) {
	done := make(chan struct{})
	time.AfterFunc(d, func() {
		defer close(done)
		fn()
	})
	return func() { <-done }
}

// lastLine is the error walnut ends with; warnings may come before it.
func lastLine(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	return lines[len(lines)-1]
}

func TestS3WALFetchResumesMidBody(t *testing.T) {
	f := newS3Faults(t)
	src := testpg.New(t, testpg.Options{})
	seg := completeSegment(t, src)
	name := filepath.Base(seg)
	// Uncompressed, the object is the whole 16 MiB segment.
	mustRun(t, "", env(f.a, nil, "WALNUT_COMPRESSION=none"), "wal-push", seg)
	recovering := testpg.SharedTempDir(t)

	fetch := func(t *testing.T, what string) (result, string) {
		dest := filepath.Join(recovering, "RECOVERYXLOG")
		os.Remove(dest)
		start := time.Now()
		r := run(t, recovering, f.env(nil), "wal-fetch", name, dest)
		t.Logf("wal-fetch, %s: exit %d after %s, %d resumptions", what, r.Code, time.Since(start).Round(time.Millisecond), strings.Count(r.Stderr, "resuming"))
		return r, dest
	}
	wantWhole := func(t *testing.T, r result, dest string) {
		t.Helper()
		if r.Code != 0 {
			t.Fatalf("wal-fetch through a link that healed: %s", r)
		}
		if !bytes.Equal(readFile(t, dest), readFile(t, seg)) {
			t.Fatal("wal-fetch wrote other bytes than were pushed")
		}
		if !strings.Contains(r.Stderr, "resuming") {
			t.Errorf("no resumption logged: the link did not break mid-body\n%s", r.Stderr)
		}
	}
	wantFatal := func(t *testing.T, r result, dest string) {
		t.Helper()
		if r.Code != 200 {
			t.Errorf("wal-fetch through a link that never heals: want exit 200 during archive recovery, got %s", r)
		}
		t.Logf("last line: %s", lastLine(r.Stderr))
		if last := lastLine(r.Stderr); !strings.HasPrefix(last, "walnut: wal-fetch: ") || !strings.Contains(last, name) {
			t.Errorf("want a last line naming the segment, got %q", last)
		}
		assertAbsent(t, dest)
	}

	t.Run("limit_data heals", func(t *testing.T) {
		f.cutEveryConnection(t, 256<<10)
		defer after(2*time.Second, func() { f.proxy.RemoveToxic(t, "cut") })()
		r, dest := fetch(t, "connections cut after 256 KiB for 2 s")
		wantWhole(t, r, dest)
	})
	t.Run("reset_peer heals", func(t *testing.T) {
		// 4 MB/s: the segment is still on its way when the resets start.
		f.slowDownstream(t, 4096)
		defer f.proxy.RemoveToxic(t, "slow-down")
		defer after(time.Second, func() {
			f.resetEveryConnection(t)
			time.Sleep(1500 * time.Millisecond)
			f.proxy.RemoveToxic(t, "reset")
		})()
		r, dest := fetch(t, "connections reset from 1 s to 2.5 s")
		wantWhole(t, r, dest)
	})
	t.Run("limit_data never heals", func(t *testing.T) {
		f.cutEveryConnection(t, 256<<10)
		defer f.proxy.RemoveToxic(t, "cut")
		r, dest := fetch(t, "connections cut after 256 KiB for good")
		wantFatal(t, r, dest)
	})
	t.Run("reset_peer never heals", func(t *testing.T) {
		f.slowDownstream(t, 4096)
		defer f.proxy.RemoveToxic(t, "slow-down")
		wait := after(time.Second, func() { f.resetEveryConnection(t) })
		defer func() {
			wait()
			f.proxy.RemoveToxic(t, "reset")
		}()
		r, dest := fetch(t, "connections reset from 1 s on")
		wantFatal(t, r, dest)
	})
}

// writeRandomFile writes size incompressible bytes to path, owned by the
// server user, and returns their SHA-256.
func writeRandomFile(t *testing.T, path string, size int64) []byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rand.NewChaCha8([32]byte{7}), size)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(path); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

func fileSum(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

// treeSize is the bytes of regular files under dir, 0 while it is absent.
func treeSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func TestS3BackupFetchResumesMidBody(t *testing.T) {
	f := newS3Faults(t)
	src := archivingCluster(t, f.a, nil)
	// A file of random bytes in the data directory makes a partition of
	// some 300 MiB, cheaply: no table to load, no WAL to archive. Stored
	// whole, not in chunks spread over partitions.
	const blobSize = 300 << 20
	want := writeRandomFile(t, filepath.Join(src.DataDir, "walnut_blob"), blobSize)
	start := time.Now()
	name := strings.TrimSpace(mustRun(t, "", env(f.a, src, "WALNUT_COMPRESSION=none", "WALNUT_CHUNK_SIZE=1GiB"), "backup-push", src.DataDir).Stdout)
	t.Logf("backup-push of a %d MiB file took %s", blobSize>>20, time.Since(start).Round(time.Millisecond))
	var biggest int64
	for _, k := range s3Keys(t, f.m, f.a, "backups/"+name+"/part_") {
		biggest = max(biggest, s3Stat(t, f, k))
	}
	if biggest < blobSize {
		t.Fatalf("largest partition %d bytes, want at least %d", biggest, blobSize)
	}

	fetch := func(t *testing.T, what string) (result, string) {
		dest := filepath.Join(f.a.Dir, "restored")
		os.RemoveAll(dest)
		start := time.Now()
		r := run(t, "", f.env(nil), "backup-fetch", "--no-recovery", dest, name)
		t.Logf("backup-fetch of a %d MiB partition, %s: exit %d after %s, %d resumptions", biggest>>20, what, r.Code,
			time.Since(start).Round(time.Millisecond), strings.Count(r.Stderr, "resuming"))
		return r, dest
	}
	wantWhole := func(t *testing.T, r result, dest string) {
		t.Helper()
		if r.Code != 0 {
			t.Fatalf("backup-fetch through a link that healed: %s", r)
		}
		if !bytes.Equal(fileSum(t, filepath.Join(dest, "walnut_blob")), want) {
			t.Fatal("the restored file differs from the backed-up one")
		}
		if !strings.Contains(r.Stderr, "resuming") {
			t.Errorf("no resumption logged: the link did not break mid-body\n%s", r.Stderr)
		}
	}

	t.Run("limit_data heals", func(t *testing.T) {
		f.cutEveryConnection(t, 1<<20)
		defer after(3*time.Second, func() { f.proxy.RemoveToxic(t, "cut") })()
		r, dest := fetch(t, "connections cut after 1 MiB for 3 s")
		wantWhole(t, r, dest)
		verifyBackup(t, dest)
	})
	t.Run("reset_peer heals", func(t *testing.T) {
		// 64 MB/s, and the resets begin once 64 MiB are restored: in the
		// middle of the large partition.
		f.slowDownstream(t, 64<<10)
		defer f.proxy.RemoveToxic(t, "slow-down")
		dest := filepath.Join(f.a.Dir, "restored")
		os.RemoveAll(dest) // the last case's restore, before the watch begins
		defer after(0, func() {
			deadline := time.Now().Add(time.Minute)
			for treeSize(dest) < 64<<20 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("resets begin with %d MiB restored", treeSize(dest)>>20)
			f.resetEveryConnection(t)
			time.Sleep(1500 * time.Millisecond)
			f.proxy.RemoveToxic(t, "reset")
		})()
		r, dest := fetch(t, "connections reset for 1.5 s once 64 MiB are in")
		wantWhole(t, r, dest)
	})
	t.Run("limit_data never heals", func(t *testing.T) {
		f.cutEveryConnection(t, 1<<20)
		defer f.proxy.RemoveToxic(t, "cut")
		r, dest := fetch(t, "connections cut after 1 MiB for good")
		if r.Code == 0 {
			t.Fatalf("backup-fetch through a link that never heals succeeded: %s", r)
		}
		t.Logf("last line: %s", lastLine(r.Stderr))
		if last := lastLine(r.Stderr); !strings.HasPrefix(last, "walnut: backup-fetch: ") {
			t.Errorf("want one last line from backup-fetch, got %q", last)
		}
		assertEmptyOrAbsent(t, dest)
	})
}

// s3Stat returns the size of key under the archive, straight from MinIO.
func s3Stat(t *testing.T, f *s3Faults, key string) int64 {
	t.Helper()
	prefix := strings.TrimPrefix(f.a.Prefix, "s3://"+s3Bucket+"/") + "/"
	info, err := f.m.Client(t).StatObject(t.Context(), s3Bucket, prefix+key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return info.Size
}
