package exactsize_test

import (
	"io"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/storage/internal/exactsize"
)

func TestReader(t *testing.T) {
	tests := []struct {
		src     string
		size    int64
		wantErr string
	}{
		{"", 0, ""},
		{"abc", 3, ""},
		{"abc", 10, "source ended after 3 of the 10 bytes announced"},
		{"abcdef", 3, "source holds more than the 3 bytes announced"},
		{"a", 0, "source holds more than the 0 bytes announced"},
	}
	for _, tt := range tests {
		got, err := io.ReadAll(exactsize.Reader(strings.NewReader(tt.src), tt.size))
		switch {
		case tt.wantErr == "" && (err != nil || string(got) != tt.src):
			t.Errorf("%q as %d: read %q, %v; want it all", tt.src, tt.size, got, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q as %d: err %v, want %q", tt.src, tt.size, err, tt.wantErr)
		}
	}
}
