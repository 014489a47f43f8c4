package retention

import (
	"testing"
	"time"
)

func TestDeletePolicy(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		args []string
		time string
		want Policy
		bad  bool
	}{
		{args: []string{"retain", "7"}, want: Policy{Mode: Retain, Retain: 7}},
		{args: []string{"before", "base_000000010000000000000002_00000028"}, want: Policy{Mode: Before, Name: "base_000000010000000000000002_00000028"}},
		{args: []string{"before", "LATEST"}, want: Policy{Mode: Before, Name: "LATEST"}},
		{args: []string{"before"}, time: "2026-11-26T03:00:00Z", want: Policy{Mode: BeforeTime, Time: at}},
		{args: []string{"before"}, time: "2026-11-26 04:00:00+01", want: Policy{Mode: BeforeTime, Time: at}},
		{args: []string{"garbage"}, want: Policy{Mode: Garbage}},
		{args: []string{"everything"}, want: Policy{Mode: Everything}},
		{args: nil, bad: true},
		{args: []string{"retain"}, bad: true},
		{args: []string{"retain", "0"}, bad: true},
		{args: []string{"retain", "-1"}, bad: true},
		{args: []string{"retain", "seven"}, bad: true},
		{args: []string{"retain", "7"}, time: "2026-11-26T03:00:00Z", bad: true},
		{args: []string{"before"}, bad: true},
		{args: []string{"before", "x"}, time: "2026-11-26T03:00:00Z", bad: true},
		{args: []string{"before"}, time: "2026-11-26 03:00:00", bad: true}, // no zone
		{args: []string{"garbage", "now"}, bad: true},
		{args: []string{"everything", "--force"}, bad: true},
		{args: []string{"old-versions"}, bad: true},
	}
	for _, c := range cases {
		got, err := ParsePolicy(c.args, c.time)
		if c.bad {
			if err == nil {
				t.Errorf("ParsePolicy(%q, %q) accepted: %+v", c.args, c.time, got)
			}
			continue
		}
		if err != nil || got.Mode != c.want.Mode || got.Retain != c.want.Retain || got.Name != c.want.Name || !got.Time.Equal(c.want.Time) {
			t.Errorf("ParsePolicy(%q, %q) = %+v, %v; want %+v", c.args, c.time, got, err, c.want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 20: "3.0 MiB", 5 << 40: "5.0 TiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
