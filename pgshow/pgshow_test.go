package pgshow

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"1MB": 1 << 20, "16MB": 16 << 20, "64MB": 64 << 20, "1GB": 1 << 30, "8192": 8192, "512kB": 512 << 10, "1024kB": 1 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "0", "-1MB", "16 MB", "16mb", "x"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d; want an error", in, got)
		}
	}
}
