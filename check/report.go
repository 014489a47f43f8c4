package check

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Write prints the results as JSON or as text.
func Write(w io.Writer, results []Result, asJSON bool) error {
	if asJSON {
		return WriteJSON(w, results)
	}
	return WriteText(w, results)
}

// WriteText prints one line per check: its status, its name, and what
// was found with the fix, kept to one line.
func WriteText(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range results {
		line := r.Detail
		if r.Fix != "" {
			line += "; fix: " + r.Fix
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Status, r.Name, strings.Join(strings.Fields(line), " "))
	}
	return tw.Flush()
}

// WriteJSON prints the checks as JSON, with whether all passed.
func WriteJSON(w io.Writer, results []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		OK     bool     `json:"ok"`
		Checks []Result `json:"checks"`
	}{!Failed(results), results})
}

// CountFailed is the number of checks that failed.
func CountFailed(results []Result) int {
	n := 0
	for _, r := range results {
		if r.Status == Fail {
			n++
		}
	}
	return n
}
