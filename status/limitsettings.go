package status

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/walnut-pg/walnut/config/size"
)

// LimitSetting is one threshold: the flag of walnut status that sets it,
// the variable that sets it when the flag is not given, its default and
// its help.
type LimitSetting struct {
	Flag, Env, Default, Usage string
	parse                     func(string) (float64, error)
}

// LimitSettings are status's thresholds, in the order of their flags.
var LimitSettings = []LimitSetting{
	{"max-backup-age", "WALNUT_STATUS_MAX_BACKUP_AGE", "26h", "[WARN,]CRIT age of the newest backup, e.g. 25h,26h or 2d; off to ignore", parseAge},
	{"max-archive-lag", "WALNUT_STATUS_MAX_ARCHIVE_LAG", "off", "[WARN,]CRIT complete WAL segments written but not archived, e.g. 4,16", parseSegments},
	{"max-archive-failure-age", "WALNUT_STATUS_MAX_ARCHIVE_FAILURE_AGE", "0s,5m", "[WARN,]CRIT time archive_command has been failing (0s,5m: warn at the first failure)", parseAge},
	{"max-replication-lag", "WALNUT_STATUS_MAX_REPLICATION_LAG", "off", "[WARN,]CRIT replay lag of the standby furthest behind: a size (16MB,64MB) or a time (30s,5m)", nil},
}

// ReadLimits reads each limit from its flag (flag returns the value and
// whether it was given), else its variable (env), else its default. One
// that is set but not understood is named and refused.
func ReadLimits(flag, env func(name string) (string, bool)) (Limits, error) {
	var out Limits
	for _, l := range LimitSettings {
		v, from := l.Default, "default"
		if f, ok := flag(l.Flag); ok {
			v, from = f, "--"+l.Flag
		} else if e, ok := env(l.Env); ok && strings.TrimSpace(e) != "" {
			v, from = e, l.Env
		}
		parse := l.parse
		if parse == nil {
			var inSeconds bool
			parse, inSeconds = lagParser(v)
			out.ReplicationLagSeconds = inSeconds
		}
		lim, err := ParseLimit(v, parse)
		if err != nil {
			return out, fmt.Errorf("%s=%q: %w", from, v, err)
		}
		switch l.Flag {
		case "max-backup-age":
			out.BackupAge = lim
		case "max-archive-lag":
			out.ArchiveLag = lim
		case "max-archive-failure-age":
			out.ArchiveFailureAge = lim
		case "max-replication-lag":
			out.ReplicationLag = lim
		}
	}
	return out, nil
}

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
