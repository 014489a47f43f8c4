package backup

import (
	"context"
	"io"

	"github.com/walnut-pg/walnut/tarball"
)

// Progress hears how far a backup or restore has got, for a progress bar.
// Its methods are called from several goroutines at once.
type Progress interface {
	// Total sets the bytes expected in all; it is an estimate, as files
	// change while a backup reads them.
	Total(n int64)
	// Add counts n more bytes done.
	Add(n int64)
}

// progressReader counts what is read through it.
type progressReader struct {
	r io.Reader
	p Progress
}

func (pr progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	if n > 0 {
		pr.p.Add(int64(n))
	}
	return n, err
}

// countProgress wraps r when p is set.
func countProgress(r io.Reader, p Progress) io.Reader {
	if p == nil {
		return r
	}
	return progressReader{r: r, p: p}
}

// estimateSize sums the sizes of the files a backup will read, for a
// progress bar's total. A file that changes or fails to stat only makes the
// estimate a little off, so errors end the count instead of the backup.
func estimateSize(ctx context.Context, dataDir string, tablespaces []Tablespace, versionDir string) int64 {
	var total int64
	w := &walker{versionDir: versionDir, skippedLink: func(string) {}, emit: func(it walkItem) error {
		if it.Info.Mode().IsRegular() {
			total += it.Info.Size()
		}
		return nil
	}}
	_ = w.walkCluster(ctx, dataDir, tablespaces)
	return total
}

// tarSize is how many tar bytes the entries of files make, summed over
// their partitions: what a restore reads through its decompressors. Long
// names' extended headers are left out; they are rare and small.
func tarSize(files []tarball.File) int64 {
	const block = 512
	parts := map[int]bool{}
	var n int64
	for _, f := range files {
		parts[f.Partition] = true
		n += block
		if f.Type == tarball.TypeFile {
			n += (f.Size + block - 1) &^ (block - 1)
		}
	}
	return n + int64(len(parts))*2*block
}
