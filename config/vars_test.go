package config

import (
	"strings"
	"testing"
)

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

// Every size setting takes the units WALNUT_RATE_LIMIT takes.
func TestSize(t *testing.T) {
	cases := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"", 1 << 30, ""},
		{"1073741824", 1 << 30, ""},
		{"8MB", 8e6, ""},
		{"8MiB", 8 << 20, ""},
		{" 512 KiB ", 512 << 10, ""},
		{"1.5GiB", 3 << 29, ""},
		{"2G", 2e9, ""},
		{"0", 0, "at least 1 byte"},
		{"0.5", 0, "at least 1 byte"},
		{"-1", 0, "want a number of bytes"},
		{"8XB", 0, `WALNUT_PARTITION_SIZE="8XB": want a number of bytes with an optional unit`},
		{"big", 0, "want a number of bytes"},
	}
	for _, c := range cases {
		e := New([]string{"WALNUT_PARTITION_SIZE=" + c.in})
		got, err := e.Size("WALNUT_PARTITION_SIZE", 1<<30)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("Size(%q) = %d, %v; want an error containing %q", c.in, got, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Size(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

// WAL-E's prefix variables name one store each: another scheme is refused
// with the variable named, WALNUT_PREFIX takes any.
func TestPrefixScheme(t *testing.T) {
	for _, c := range []struct {
		env  string
		ok   bool
		name string
	}{
		{"WALE_S3_PREFIX=s3://b/p", true, "WALE_S3_PREFIX"},
		{"WALE_S3_PREFIX=S3://b/p", true, "WALE_S3_PREFIX"},
		{"WALE_S3_PREFIX=file:///x", false, "WALE_S3_PREFIX"},
		{"WALE_WABS_PREFIX=wabs://c/p", true, "WALE_WABS_PREFIX"},
		{"WALE_WABS_PREFIX=azure://c/p", true, "WALE_WABS_PREFIX"},
		{"WALE_WABS_PREFIX=s3://c/p", false, "WALE_WABS_PREFIX"},
		{"WALE_SWIFT_PREFIX=swift://c/p", true, "WALE_SWIFT_PREFIX"},
		{"WALE_SWIFT_PREFIX=gs://c/p", false, "WALE_SWIFT_PREFIX"},
		{"WALE_GS_PREFIX=gs://b/p", true, "WALE_GS_PREFIX"},
		{"WALE_GS_PREFIX=/var/lib/x", false, "WALE_GS_PREFIX"},
		{"WALE_FILE_PREFIX=file:///x", true, "WALE_FILE_PREFIX"},
		{"WALE_FILE_PREFIX=s3://b", false, "WALE_FILE_PREFIX"},
		{"WALNUT_PREFIX=s3://b", true, "WALNUT_PREFIX"},
	} {
		_, from, err := New([]string{c.env}).Prefix()
		if c.ok && (err != nil || from != c.name) {
			t.Errorf("%s: %v (from %s)", c.env, err, from)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), c.name)) {
			t.Errorf("%s: accepted, or the error does not name the variable: %v", c.env, err)
		}
	}
}
