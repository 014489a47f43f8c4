package retention

import (
	"fmt"
	"strconv"
	"time"
)

// ParsePolicy reads the form of delete from its arguments (walnut
// delete's command line) and --time's value, beforeTime.
func ParsePolicy(args []string, beforeTime string) (Policy, error) {
	if len(args) == 0 {
		return Policy{}, fmt.Errorf("say what to delete: retain N, before NAME, before --time TIMESTAMP, garbage or everything")
	}
	mode, rest := args[0], args[1:]
	if beforeTime != "" && mode != "before" {
		return Policy{}, fmt.Errorf("--time goes with before, not %s", mode)
	}
	want := func(n int, what string) error {
		if len(rest) != n {
			return fmt.Errorf("%s: want %s, got %d arguments", mode, what, len(rest))
		}
		return nil
	}
	switch mode {
	case "retain":
		if err := want(1, "a number of backups"); err != nil {
			return Policy{}, err
		}
		n, err := strconv.Atoi(rest[0])
		if err != nil || n < 1 {
			return Policy{}, fmt.Errorf("retain %q: want a number of backups, at least 1 (delete everything removes all)", rest[0])
		}
		return Policy{Mode: Retain, Retain: n}, nil
	case "before":
		if beforeTime != "" {
			if err := want(0, "a backup name or --time, not both"); err != nil {
				return Policy{}, err
			}
			t, err := parseTimestamp(beforeTime)
			if err != nil {
				return Policy{}, err
			}
			return Policy{Mode: BeforeTime, Time: t}, nil
		}
		if err := want(1, "a backup name, LATEST or --time TIMESTAMP"); err != nil {
			return Policy{}, err
		}
		return Policy{Mode: Before, Name: rest[0]}, nil
	case "garbage":
		if err := want(0, "no arguments"); err != nil {
			return Policy{}, err
		}
		return Policy{Mode: Garbage}, nil
	case "everything":
		if err := want(0, "no arguments"); err != nil {
			return Policy{}, err
		}
		return Policy{Mode: Everything}, nil
	case "old-versions":
		// WAL-E removed objects of its earlier storage formats. walnut
		// writes one format, and retires old backups by age.
		return Policy{}, fmt.Errorf("old-versions: walnut writes one archive format, so nothing is of an old version; retire old backups and their WAL with delete retain N or delete before NAME")
	}
	return Policy{}, fmt.Errorf("unknown form %q: want retain, before, garbage or everything", mode)
}

// Timestamps must say their zone: a cron job and the server it cleans up
// after need not share one.
var timestampLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05Z07", "2006-01-02 15:04:05Z07"}

func parseTimestamp(s string) (time.Time, error) {
	for _, l := range timestampLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--time %q: want RFC 3339 with a zone, e.g. 2026-11-26T03:00:00Z or '2026-11-26 03:00:00+01'", s)
}
