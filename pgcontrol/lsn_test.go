package pgcontrol

import "testing"

func TestParseLSN(t *testing.T) {
	tests := []struct {
		in      string
		want    LSN
		wantErr bool
	}{
		{in: "0/0", want: 0},
		{in: "16/B374D848", want: 0x16_B374D848},
		{in: "16/b374d848", want: 0x16_B374D848},
		{in: "0/1500718", want: 0x1500718},
		{in: "0/01500718", want: 0x1500718}, // PostgreSQL 18 zero-pads the low part
		{in: "FFFFFFFF/FFFFFFFF", want: ^LSN(0)},
		{in: "", wantErr: true},
		{in: "16B374D848", wantErr: true},
		{in: "/B374D848", wantErr: true},
		{in: "16/", wantErr: true},
		{in: "1/2/3", wantErr: true},
		{in: "100000000/0", wantErr: true},
		{in: "0/100000000", wantErr: true},
		{in: "0x1/0", wantErr: true},
		{in: "+1/0", wantErr: true},
		{in: "G/0", wantErr: true},
		{in: " 1/0", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseLSN(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseLSN(%q) = %v, want error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLSN(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestLSNString(t *testing.T) {
	tests := []struct {
		lsn  LSN
		want string
	}{
		{0, "0/0"},
		{0x16_B374D848, "16/B374D848"},
		{0x1500718, "0/1500718"},
		{0x1_00000000, "1/0"},
		{^LSN(0), "FFFFFFFF/FFFFFFFF"},
	}
	for _, tt := range tests {
		if got := tt.lsn.String(); got != tt.want {
			t.Errorf("LSN(%#x).String() = %q, want %q", uint64(tt.lsn), got, tt.want)
		}
		back, err := ParseLSN(tt.want)
		if err != nil || back != tt.lsn {
			t.Errorf("round trip %q: got %v, %v", tt.want, back, err)
		}
	}
}
