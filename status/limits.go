package status

import (
	"fmt"
	"strings"
)

// Limit is a warning and a critical bound on one figure. A figure above a
// bound is in that bound's state; equal is still fine. A bound that is not
// set is never reached.
type Limit struct {
	Warn, Crit       float64
	HasWarn, HasCrit bool
}

// Off is the limit that is never reached.
var Off = Limit{}

// ParseLimit reads "CRIT", "WARN,CRIT" or "off", each bound read by one,
// which returns it in the check's unit (seconds, segments, bytes). A
// warning above the critical bound is refused: it could never be seen.
func ParseLimit(s string, one func(string) (float64, error)) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "off") {
		return Off, nil
	}
	warn, crit, pair := strings.Cut(s, ",")
	if !pair {
		c, err := one(s)
		if err != nil {
			return Off, err
		}
		return Limit{Crit: c, HasCrit: true}, nil
	}
	w, err := one(strings.TrimSpace(warn))
	if err != nil {
		return Off, fmt.Errorf("warning bound: %w", err)
	}
	c, err := one(strings.TrimSpace(crit))
	if err != nil {
		return Off, fmt.Errorf("critical bound: %w", err)
	}
	if w > c {
		return Off, fmt.Errorf("the warning bound is above the critical one: want WARN,CRIT")
	}
	return Limit{Warn: w, Crit: c, HasWarn: true, HasCrit: true}, nil
}

// State judges v.
func (l Limit) State(v float64) State {
	switch {
	case l.HasCrit && v > l.Crit:
		return Critical
	case l.HasWarn && v > l.Warn:
		return Warning
	}
	return OK
}

func (l Limit) warnPtr() *float64 {
	if !l.HasWarn {
		return nil
	}
	return &l.Warn
}

func (l Limit) critPtr() *float64 {
	if !l.HasCrit {
		return nil
	}
	return &l.Crit
}

// Limits are the bounds status judges against.
type Limits struct {
	BackupAge         Limit // seconds since the newest backup finished
	ArchiveLag        Limit // segments written but not archived
	ArchiveFailureAge Limit // seconds archive_command has been failing
	// ReplicationLag bounds the worst standby's replay lag, in seconds
	// when ReplicationLagSeconds, else in bytes.
	ReplicationLag        Limit
	ReplicationLagSeconds bool
}
