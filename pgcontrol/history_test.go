package pgcontrol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseHistory(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []HistoryEntry
		wantErr string
	}{
		{
			name: "written by a promotion",
			in:   "1\t0/3000158\tno recovery target specified\n",
			want: []HistoryEntry{{1, 0x3000158, "no recovery target specified"}},
		},
		{
			name: "several timelines, comments and blank lines",
			in: "# comment\n\n1\t0/3000158\tno recovery target specified\n" +
				"   \n2\t16/B374D848\tbefore 2024-01-02 03:04:05.678+00\n" +
				"# another\n5\t17/0\tat restore point \"x\"\n",
			want: []HistoryEntry{
				{1, 0x3000158, "no recovery target specified"},
				{2, 0x16_B374D848, "before 2024-01-02 03:04:05.678+00"},
				{5, 0x17_00000000, `at restore point "x"`},
			},
		},
		{
			name: "no reason, spaces instead of tabs, CRLF",
			in:   "1 0/3000158\r\n2  0/4000000   reason with  spaces \r\n",
			want: []HistoryEntry{{1, 0x3000158, ""}, {2, 0x4000000, "reason with  spaces"}},
		},
		{name: "empty", in: "", want: nil},
		{name: "only comments", in: "# nothing\n\n", want: nil},
		{name: "tli not a number", in: "x\t0/1\tr\n", wantErr: "line 1: timeline ID"},
		{name: "negative tli", in: "-1\t0/1\tr\n", wantErr: "line 1: timeline ID"},
		{name: "missing switchpoint", in: "1\n", wantErr: "line 1: missing switchpoint"},
		{name: "bad switchpoint", in: "# c\n1\t0-1\tr\n", wantErr: "line 2: parse LSN"},
		{name: "not increasing", in: "2\t0/1\ta\n2\t0/2\tb\n", wantErr: "line 2: timeline 2 does not follow 2"},
		{name: "decreasing", in: "3\t0/1\ta\n1\t0/2\tb\n", wantErr: "line 2: timeline 1 does not follow 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHistory(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q (entries %v)", err, tt.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseHistoryReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := ParseHistory(iotest.ErrReader(boom))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want wrapped %v", err, boom)
	}
}
