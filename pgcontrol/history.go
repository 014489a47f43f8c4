package pgcontrol

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// HistoryEntry is one line of a timeline history file: timeline ParentTLI
// ended at SwitchPoint, where its child timeline began.
type HistoryEntry struct {
	ParentTLI   uint32
	SwitchPoint LSN
	Reason      string
}

// ParseHistory reads a timeline history file (NNNNNNNN.history). Each line is
// "parentTLI<tab>switchpoint<tab>reason"; blank lines and lines starting with
// '#' are skipped. Like PostgreSQL's own reader, it insists that timelines
// appear in increasing order, because recovery relies on that order.
func ParseHistory(r io.Reader) ([]HistoryEntry, error) {
	var entries []HistoryEntry
	sc := bufio.NewScanner(r)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		tliField, rest := cutField(line)
		lsnField, reason := cutField(rest)
		tli, err := strconv.ParseUint(tliField, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("history line %d: timeline ID %q: not a number", lineNo, tliField)
		}
		if lsnField == "" {
			return nil, fmt.Errorf("history line %d: missing switchpoint location", lineNo)
		}
		lsn, err := ParseLSN(lsnField)
		if err != nil {
			return nil, fmt.Errorf("history line %d: %w", lineNo, err)
		}
		if n := len(entries); n > 0 && uint32(tli) <= entries[n-1].ParentTLI {
			return nil, fmt.Errorf("history line %d: timeline %d does not follow %d: timeline IDs must increase", lineNo, tli, entries[n-1].ParentTLI)
		}
		entries = append(entries, HistoryEntry{ParentTLI: uint32(tli), SwitchPoint: lsn, Reason: reason})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return entries, nil
}

// cutField splits off the first whitespace-delimited field; PostgreSQL
// writes tabs but its reader (sscanf) accepts any whitespace.
func cutField(s string) (field, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}
