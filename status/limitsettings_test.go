package status

import "testing"

func TestParseAge(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		bad  bool
	}{
		{"26h", 26 * 3600, false},
		{"90m", 5400, false},
		{"0s", 0, false},
		{"2d", 2 * 86400, false},
		{"1d12h", 36 * 3600, false},
		{"1.5h", 5400, false},
		{"26", 0, true},
		{"-1h", 0, true},
		{"d", 0, true},
		{"xd", 0, true},
		{"1dd", 0, true},
		{"soon", 0, true},
	} {
		got, err := parseAge(c.in)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("parseAge(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.bad)
		}
	}
}

func TestReplicationLagLimit(t *testing.T) {
	for _, c := range []struct {
		in        string
		want      Limit
		inSeconds bool
		bad       bool
	}{
		{"16MB", Limit{Crit: 16e6, HasCrit: true}, false, false},
		{"1MiB,64MiB", Limit{Warn: 1 << 20, Crit: 64 << 20, HasWarn: true, HasCrit: true}, false, false},
		{"1048576", Limit{Crit: 1 << 20, HasCrit: true}, false, false},
		{"0", Limit{Crit: 0, HasCrit: true}, false, false},
		{"30s,5m", Limit{Warn: 30, Crit: 300, HasWarn: true, HasCrit: true}, true, false},
		{"10m", Limit{Crit: 600, HasCrit: true}, true, false}, // minutes, never megabytes
		{"off", Off, false, false},
		{"30s,64MB", Off, true, true},
		{"64MB,5m", Off, false, true},
		{"lots", Off, false, true},
	} {
		parse, inSeconds := lagParser(c.in)
		got, err := ParseLimit(c.in, parse)
		if (err != nil) != c.bad || (!c.bad && (got != c.want || inSeconds != c.inSeconds)) {
			t.Errorf("%q: %+v (seconds %v), %v; want %+v (seconds %v), error %v", c.in, got, inSeconds, err, c.want, c.inSeconds, c.bad)
		}
	}
}
