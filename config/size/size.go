// Package size parses amounts of bytes written with units, such as 8MB or
// 20MiB. It is the one parser for every size walnut reads (partition
// size, S3 part size, Swift segment size, rate limit), and it reads no
// configuration itself, so the storage backends can use it too.
package size

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// units are the suffixes Parse accepts, case-insensitive: SI for kB, MB
// and GB (as disks and networks are sold), binary for KiB, MiB and GiB; a
// bare k, M or G is SI.
var units = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

// ErrSyntax is returned, wrapped, for text that is not a size.
var ErrSyntax = errors.New("want a number of bytes with an optional unit: kB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), e.g. 8MiB or 1GB")

// Parse returns the bytes s stands for: a plain number ("1048576"), or a
// number, possibly with a fraction, followed by a unit ("8MB", "1.5 GiB").
// A fraction of a byte is dropped. Negative sizes are refused; zero is not
// (callers that need at least a byte say so).
func Parse(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	mult, ok := units[unit]
	if !ok || num == "" {
		return 0, ErrSyntax
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, ErrSyntax
	}
	n := f * mult
	if n >= math.MaxInt64/2 {
		return 0, errors.New("too large")
	}
	return int64(n), nil
}

// Format writes n bytes the way an operator would: in the largest binary
// unit that divides it, else in bytes.
func Format(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
