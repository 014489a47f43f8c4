package restore

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/walnut-pg/walnut/pgcontrol"
)

// A recovery target PostgreSQL cannot use is found only when the restored
// server starts, or not at all: an empty one is ignored and recovery runs
// to the end of the archive. Each is checked here, before anything is
// restored.

// targetTime is the timestamp form walnut accepts: an ISO date, a time,
// and a zone as an offset or a name.
var targetTime = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?))?\s*(Z|[+-]\d{2}(?::?\d{2})?|[A-Za-z][A-Za-z0-9_/+-]*)?$`)

func checkTargetTime(v string) error {
	m := targetTime.FindStringSubmatch(strings.TrimSpace(v))
	if m == nil {
		return fmt.Errorf("--recovery-target-time %q: not a timestamp; write it as '2026-11-26 03:00:00+00'", v)
	}
	clock := m[2]
	switch len(clock) {
	case 0:
		clock = "00:00:00"
	case 5:
		clock += ":00"
	}
	if _, err := time.Parse("2006-01-02 15:04:05.999999", m[1]+" "+clock); err != nil {
		return fmt.Errorf("--recovery-target-time %q: %v", v, err)
	}
	if z := m[3]; len(z) == 3 || len(z) >= 5 && (z[0] == '+' || z[0] == '-') {
		h, _ := strconv.Atoi(z[1:3])
		if h > 15 {
			return fmt.Errorf("--recovery-target-time %q: zone offset %s out of range", v, z)
		}
	}
	return nil
}

func checkTargetLSN(v string) error {
	if _, err := pgcontrol.ParseLSN(v); err != nil {
		return fmt.Errorf("--recovery-target-lsn %q: not an LSN such as 0/3000028", v)
	}
	return nil
}

func checkTargetXID(v string) error {
	if n, err := strconv.ParseUint(v, 10, 64); err != nil || n < 3 {
		// 0 to 2 are PostgreSQL's special transaction IDs, never a target.
		return fmt.Errorf("--recovery-target-xid %q: not a transaction ID (a number of 3 or more)", v)
	}
	return nil
}

// maxTargetName is PostgreSQL's limit on a restore point's name (the
// length must stay under MAXFNAMELEN, 64).
const maxTargetName = 63

func checkTargetName(v string) error {
	if len(v) > maxTargetName {
		return fmt.Errorf("--recovery-target-name: %d bytes, PostgreSQL takes at most %d", len(v), maxTargetName)
	}
	return nil
}

func checkTargetTimeline(v string) error {
	switch v {
	case "", "latest", "current":
		return nil
	}
	if n, err := strconv.ParseUint(v, 10, 32); err != nil || n == 0 {
		return fmt.Errorf("--recovery-target-timeline %q: want latest, current or a timeline ID", v)
	}
	return nil
}
