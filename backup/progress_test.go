package backup

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/tarball"
)

type tally struct{ total, done atomic.Int64 }

func (c *tally) Total(n int64) { c.total.Store(n) }
func (c *tally) Add(n int64)   { c.done.Add(n) }

// A restore's bar counts the tar bytes it decodes; tarSize must predict
// them exactly from the manifest, or the bar would end short or overrun.
func TestTarSizeIsWhatTheWriterWrites(t *testing.T) {
	var manifest []tarball.File
	var written int64
	for part, sizes := range [][]int64{{0, 1, 511, 512, 513, 8192, 1 << 20}, {100000}} {
		var buf bytes.Buffer
		tw := tarball.NewWriter(&buf)
		f, err := tw.AddDir("base/"+strings.Repeat("d", part+1), 0o700, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		manifest = append(manifest, f)
		for i, size := range sizes {
			f, _, err := tw.AddFile(filepath.Join("base", strings.Repeat("f", i+1)), bytes.NewReader(make([]byte, size)), size, 0o600, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			f.Partition = part
			manifest = append(manifest, f)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		written += int64(buf.Len())
	}
	if got := tarSize(manifest); got != written {
		t.Errorf("tarSize = %d, the writer wrote %d", got, written)
	}
}

func TestProgressReaderCounts(t *testing.T) {
	var p tally
	data := bytes.Repeat([]byte("walnut"), 100000)
	n, err := io.Copy(io.Discard, countProgress(bytes.NewReader(data), &p))
	if err != nil || n != int64(len(data)) || p.done.Load() != n {
		t.Errorf("copied %d (%v), counted %d", n, err, p.done.Load())
	}
	if r := countProgress(os.Stdin, nil); r != os.Stdin {
		t.Error("without a Progress the reader should be left as it is")
	}
}

// The estimate is the sum of the regular files the partitions will hold,
// with pg_basebackup's exclusions applied.
func TestEstimateSize(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("PG_VERSION", 3)
	write("base/1/1259", 8192)
	write("global/pg_control", 8192)                // stored apart, at the end
	write("pg_wal/000000010000000000000001", 1<<20) // excluded
	write("postmaster.pid", 100)                    // excluded
	if got, want := estimateSize(t.Context(), dir, nil, "PG_15_"), int64(3+8192); got != want {
		t.Errorf("estimate %d, want %d", got, want)
	}
}
