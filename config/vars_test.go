package config

import "testing"

func TestByteRate(t *testing.T) {
	cases := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"", 0, false},
		{"  ", 0, false},
		{"1048576", 1 << 20, false},
		{"50MB", 50e6, false},
		{"50 MB/s", 50e6, false},
		{"50mb", 50e6, false},
		{"20MiB", 20 << 20, false},
		{"20MiB/s", 20 << 20, false},
		{"1.5G", 1.5e9, false},
		{"512k", 512e3, false},
		{"512KiB", 512 << 10, false},
		{"1GiB", 1 << 30, false},
		{"100B", 100, false},
		{"0", 0, true},
		{"0.1", 0, true},
		{"-5MB", 0, true},
		{"MB", 0, true},
		{"50TB", 0, true},
		{"fast", 0, true},
		{"5 MB extra", 0, true},
		{"1e9", 0, true},
	}
	for _, c := range cases {
		e := New([]string{"WALNUT_RATE_LIMIT=" + c.in})
		got, err := e.ByteRate("WALNUT_RATE_LIMIT")
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("ByteRate(%q) = %d, %v; want %d, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
	if got, err := New(nil).ByteRate("WALNUT_RATE_LIMIT"); got != 0 || err != nil {
		t.Errorf("unset: got %d, %v; want 0, nil", got, err)
	}
}

func TestParseSize(t *testing.T) {
	cases := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"16777216", 16 << 20, false},
		{"16MB", 16e6, false},
		{" 16MiB ", 16 << 20, false},
		{"1.5GiB", 3 << 29, false},
		{"512kB", 512e3, false},
		{"", 0, true},
		{"-1", 0, true},
		{"16MB/s", 0, true},
		{"16 bytes", 0, true},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
}
