package termprogress

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Workers add bytes concurrently, before and after the total is known and
// past an estimate that was too low; every byte is counted once.
func TestByteBarCounts(t *testing.T) {
	var out bytes.Buffer
	sink := NewLogSink(&out)
	b := New("restore", &out, sink)
	const workers, adds, chunk = 8, 500, 1000
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for j := range adds {
				if i == 0 && j == adds/2 {
					b.Total(workers * adds * chunk / 2)
				}
				b.Add(chunk)
			}
		})
	}
	wg.Wait()
	if got := b.Done(); got != workers*adds*chunk {
		t.Errorf("counted %d bytes, want %d", got, workers*adds*chunk)
	}
	if b.bar.GetMax64() <= b.Done() {
		t.Errorf("bar max %d not above the %d bytes done: a full bar stops drawing before the end", b.bar.GetMax64(), b.Done())
	}
	fmt.Fprint(sink, "level=INFO msg=\"between two bars\"\n")
	b.Stop()
	fmt.Fprint(sink, "level=INFO msg=after\n")
	s := out.String()
	if !strings.Contains(s, "restore") || !strings.Contains(s, "MiB") {
		t.Errorf("no bar drawn: %q", s)
	}
	if !strings.Contains(s, "level=INFO msg=\"between two bars\"\n") {
		t.Errorf("a log line written while the bar was up was not written whole: %q", s)
	}
	if !strings.HasSuffix(s, "\rlevel=INFO msg=after\n") {
		t.Errorf("the bar was not cleared before later log lines: %q", s[max(0, len(s)-200):])
	}
}

func TestByteBarNilStop(t *testing.T) {
	var b *Bar
	b.Stop() // commands call Stop whether or not a bar was made
}
