package commands

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/walnut-pg/walnut/config/size"
)

var errWantAge = errors.New("want a duration such as 26h, 90m or 2d")

// parseAge reads a duration as Go writes them (90s, 26h, 1h30m), with
// whole days allowed in front (2d, 1d12h), in seconds.
func parseAge(s string) (float64, error) {
	days := 0
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, errWantAge
		}
		days, s = n, s[i+1:]
		if s == "" {
			s = "0s"
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errWantAge
	}
	return (time.Duration(days)*24*time.Hour + d).Seconds(), nil
}

// parseSegments reads a count of WAL segments.
func parseSegments(s string) (float64, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, errors.New("want a number of WAL segments, e.g. 16")
	}
	return float64(n), nil
}

// lagParser picks how a replication lag limit is read: as a time when it
// holds one (30s, 5m; a bare number never is), else as a size in bytes.
// Both bounds of a pair must be of one kind.
func lagParser(v string) (parse func(string) (float64, error), inSeconds bool) {
	first, _, _ := strings.Cut(strings.TrimSpace(v), ",")
	first = strings.TrimSpace(first)
	if _, err := parseAge(first); err == nil && strings.Trim(first, "0123456789.") != "" {
		return func(s string) (float64, error) {
			v, err := parseAge(s)
			if err != nil {
				return 0, fmt.Errorf("%w (both bounds are times, as the first)", err)
			}
			return v, nil
		}, true
	}
	return func(s string) (float64, error) {
		n, err := size.Parse(s)
		if err != nil {
			return 0, fmt.Errorf("%w; or a time such as 30s", err)
		}
		return float64(n), nil
	}, false
}
