package basebackup

import "testing"

// wal_segment_size as SHOW prints it, for every size initdb allows.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"1MB": 1 << 20, "16MB": 16 << 20, "64MB": 64 << 20, "1GB": 1 << 30, "8192": 8192, "512kB": 512 << 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "16 MB", "0MB", "-1MB", "16mb"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d; want an error", in, got)
		}
	}
}
