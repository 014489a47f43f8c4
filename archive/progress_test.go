package archive

import (
	"bytes"
	"io"
	"os"
	"sync/atomic"
	"testing"
)

type tally struct{ total, done atomic.Int64 }

func (c *tally) Total(n int64) { c.total.Store(n) }
func (c *tally) Add(n int64)   { c.done.Add(n) }

func TestProgressReaderCounts(t *testing.T) {
	var p tally
	data := bytes.Repeat([]byte("walnut"), 100000)
	n, err := io.Copy(io.Discard, CountProgress(bytes.NewReader(data), &p))
	if err != nil || n != int64(len(data)) || p.done.Load() != n {
		t.Errorf("copied %d (%v), counted %d", n, err, p.done.Load())
	}
	if r := CountProgress(os.Stdin, nil); r != os.Stdin {
		t.Error("without a Progress the reader should be left as it is")
	}
}
