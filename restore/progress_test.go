package restore

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/tarball"
)

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
