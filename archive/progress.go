package archive

import (
	"io"
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

// CountProgress wraps r when p is set.
func CountProgress(r io.Reader, p Progress) io.Reader {
	if p == nil {
		return r
	}
	return progressReader{r: r, p: p}
}
