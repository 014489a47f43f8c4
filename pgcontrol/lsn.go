package pgcontrol

import (
	"fmt"
	"strconv"
	"strings"
)

// LSN is a position in the write-ahead log (PostgreSQL's XLogRecPtr).
type LSN uint64

// ParseLSN reads the textual form PostgreSQL prints and accepts, "16/B374D848":
// the high and low 32 bits in hexadecimal, either case, separated by a slash.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("parse LSN %q: missing '/'", s)
	}
	h, err := parseHex32(hi)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: high part: %w", s, err)
	}
	l, err := parseHex32(lo)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: low part: %w", s, err)
	}
	return LSN(h)<<32 | LSN(l), nil
}

// parseHex32 rejects signs and prefixes that strconv would tolerate, because
// pg_lsn input does not accept them either.
func parseHex32(s string) (uint32, error) {
	if s == "" || len(s) > 8 {
		return 0, fmt.Errorf("want 1 to 8 hex digits, got %q", s)
	}
	for _, c := range s {
		if !isHexDigit(c) {
			return 0, fmt.Errorf("not a hex digit: %q", c)
		}
	}
	v, err := strconv.ParseUint(s, 16, 32)
	return uint32(v), err
}

func isHexDigit(c rune) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// String prints the LSN the way PostgreSQL 12 to 18 do (%X/%X, no zero
// padding), so it can be compared with pg_controldata and pg_lsn output.
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}
