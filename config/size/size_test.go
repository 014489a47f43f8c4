package size

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"1048576", 1 << 20, false},
		{" 1048576 ", 1 << 20, false},
		{"100B", 100, false},
		{"100 b", 100, false},
		{"8MB", 8e6, false},
		{"8mb", 8e6, false},
		{"8 MB", 8e6, false},
		{"8M", 8e6, false},
		{"8MiB", 8 << 20, false},
		{"8mib", 8 << 20, false},
		{"512k", 512e3, false},
		{"512kB", 512e3, false},
		{"512KiB", 512 << 10, false},
		{"1G", 1e9, false},
		{"1GB", 1e9, false},
		{"1GiB", 1 << 30, false},
		{"1.5G", 1.5e9, false},
		{"1.5GiB", 3 << 29, false},
		{"0.5", 0, false},
		{"", 0, true},
		{"MB", 0, true},
		{"-5MB", 0, true},
		{"8XB", 0, true},
		{"50TB", 0, true},
		{"fast", 0, true},
		{"5 MB extra", 0, true},
		{"1e9", 0, true},
		{"1.2.3", 0, true},
		{"99999999999GiB", 0, true},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
	if _, err := Parse("8XB"); !errors.Is(err, ErrSyntax) {
		t.Errorf("Parse(8XB) = %v, want ErrSyntax", err)
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 1: "1", 1000: "1000", 1 << 10: "1KiB", 5 << 20: "5MiB", 3 << 29: "1536MiB", 5 << 30: "5GiB"} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}
