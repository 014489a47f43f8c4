package restore

import (
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/storage/mem"
)

func TestTimelineAdvice(t *testing.T) {
	// The backup ran on timeline 1 and ended at 0/5000100.
	sn := &archive.Sentinel{Name: "base_000000010000000000000004_00000028", Timeline: 1, FinishLSN: "0/5000100"}
	history := func(s *mem.Store, tli, content string) {
		t.Helper()
		key := archive.WALKey("0000000"+tli+".history", "0123456789abcdef", "")
		if err := s.Put(t.Context(), key, strings.NewReader(content), int64(len(content))); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name      string
		histories map[string]string
		want      []string // "" when there is nothing to say
	}{
		{"no newer timeline", nil, nil},
		{"branched after the end", map[string]string{"2": "1\t0/6000000\tno recovery target specified\n"}, nil},
		{"branched before the end", map[string]string{"2": "1\t0/3000000\tbefore_drop\n"},
			[]string{"00000002.history (branched from timeline 1 at 0/3000000", "--recovery-target-timeline current", "timeline 2 is not a child"}},
		{"newest bad, an older one good", map[string]string{
			"2": "1\t0/6000000\tx\n",
			"3": "1\t0/6000000\tx\n2\t0/7000000\ty\n",
			"4": "1\t0/2000000\tz\n"},
			[]string{"00000004.history", "--recovery-target-timeline 3"}},
		{"newest good over a bad one", map[string]string{
			"2": "1\t0/3000000\tx\n",
			"3": "1\t0/6000000\ty\n"}, nil},
		{"not a descendant", map[string]string{"2": "5\t0/9000000\tx\n"}, []string{"does not descend from timeline 1"}},
	}
	for _, c := range cases {
		s := mem.New()
		for tli, h := range c.histories {
			history(s, tli, h)
		}
		got, err := timelineAdvice(t.Context(), s, nil, sn)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(c.want) == 0 && got != "" {
			t.Errorf("%s: %q, want nothing", c.name, got)
		}
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", c.name, got, w)
			}
		}
	}
}
