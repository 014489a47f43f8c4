package restore

import (
	"strings"
	"testing"
)

func TestValidateRecoveryTargets(t *testing.T) {
	cmd := "walnut wal-fetch %f %p"
	cases := []struct {
		name string
		r    RecoveryOptions
		want string // "" for valid
	}{
		{"no target", RecoveryOptions{}, ""},
		{"time", RecoveryOptions{TargetTime: "2026-11-26 03:00:00+00"}, ""},
		{"time T and fraction", RecoveryOptions{TargetTime: "2026-11-26T03:00:00.123456Z"}, ""},
		{"time with zone name", RecoveryOptions{TargetTime: "2026-11-26 03:00:00 Europe/Berlin"}, ""},
		{"time without zone", RecoveryOptions{TargetTime: "2026-11-26 03:00"}, ""},
		{"date only", RecoveryOptions{TargetTime: "2026-11-26"}, ""},
		{"time offset with minutes", RecoveryOptions{TargetTime: "2026-11-26 03:00:00+05:30"}, ""},
		{"lsn", RecoveryOptions{TargetLSN: "0/3000028"}, ""},
		{"xid", RecoveryOptions{TargetXID: "7654321"}, ""},
		{"name", RecoveryOptions{TargetName: "before_drop"}, ""},
		{"action with target", RecoveryOptions{TargetName: "x", TargetAction: "promote"}, ""},
		{"timeline id", RecoveryOptions{TargetTimeline: "3"}, ""},
		{"timeline current", RecoveryOptions{TargetTimeline: "current"}, ""},

		{"empty time given", RecoveryOptions{TargetTimeGiven: true, TargetAction: "promote"}, "--recovery-target-time is empty"},
		{"blank lsn given", RecoveryOptions{TargetLSN: " ", TargetLSNGiven: true}, "--recovery-target-lsn is empty"},
		{"empty xid given", RecoveryOptions{TargetXIDGiven: true}, "--recovery-target-xid is empty"},
		{"empty name given", RecoveryOptions{TargetNameGiven: true}, "--recovery-target-name is empty"},
		{"not a time", RecoveryOptions{TargetTime: "not a time", TargetTimeGiven: true}, "not a timestamp"},
		{"month 13", RecoveryOptions{TargetTime: "2026-13-01 00:00:00"}, "month out of range"},
		{"hour 25", RecoveryOptions{TargetTime: "2026-11-26 25:00:00"}, "hour out of range"},
		{"offset 24", RecoveryOptions{TargetTime: "2026-11-26 03:00:00+24"}, "zone offset"},
		{"lsn garbage", RecoveryOptions{TargetLSN: "3000028"}, "not an LSN"},
		{"xid negative", RecoveryOptions{TargetXID: "-5"}, "not a transaction ID"},
		{"xid special", RecoveryOptions{TargetXID: "2"}, "not a transaction ID"},
		{"name too long", RecoveryOptions{TargetName: strings.Repeat("n", 64)}, "at most 63"},
		{"two targets", RecoveryOptions{TargetName: "x", TargetLSN: "0/1"}, "at most one"},
		{"action without target", RecoveryOptions{TargetAction: "promote"}, "without a recovery target"},
		{"bad action", RecoveryOptions{TargetName: "x", TargetAction: "stop"}, "want pause, promote or shutdown"},
		{"bad timeline", RecoveryOptions{TargetTimeline: "newest"}, "--recovery-target-timeline"},
		{"timeline zero", RecoveryOptions{TargetTimeline: "0"}, "--recovery-target-timeline"},
	}
	for _, c := range cases {
		c.r.RestoreCommand = cmd
		err := c.r.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}
