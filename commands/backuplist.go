package commands

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/retention"
)

// WAL-E's backup-list columns, kept so scripts written for it still parse.
var walEColumns = []string{"name", "last_modified", "expanded_size_bytes", "wal_segment_backup_start",
	"wal_segment_offset_backup_start", "wal_segment_backup_stop", "wal_segment_offset_backup_stop"}

func backupListCommand(g *globals) *cli.Command {
	var asCSV, asJSON, detail bool
	return &cli.Command{
		Name:      "backup-list",
		Usage:     "list base backups, oldest first",
		ArgsUsage: "[NAME|LATEST]",
		Description: "Prints WAL-E's tab-separated columns with a header (default), CSV with the same header (--csv)\n" +
			"or JSON (--json). With NAME or LATEST, only that backup (none: the header alone).\n" + varsHelp("WALNUT_PREFIX"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "csv", Usage: "CSV with WAL-E's columns", Destination: &asCSV},
			&cli.BoolFlag{Name: "json", Usage: "JSON array of the backups' sentinels", Destination: &asJSON},
			&cli.BoolFlag{Name: "detail", Usage: "add sizes, codec, encryption, PG version, timeline, LSNs and times", Destination: &detail},
		},
		Action: func(c *cli.Context) error {
			if asCSV && asJSON {
				return usageError(fmt.Errorf("backup-list: --csv and --json exclude each other"))
			}
			if c.NArg() > 1 {
				return usageError(fmt.Errorf("backup-list: want at most one backup name or LATEST, got %d arguments", c.NArg()))
			}
			query := c.Args().First()
			if c.NArg() == 1 && query != "LATEST" && !backupNameRE.MatchString(query) {
				return usageError(fmt.Errorf("backup-list: %q is not a backup name (base_<segment>_<offset>) or LATEST", query))
			}
			store, err := g.openStore(c.Context)
			if err != nil {
				return err
			}
			defer store.Close()
			list, err := retention.List(c.Context, store)
			if err != nil {
				return fmt.Errorf("backup-list: %w", err)
			}
			chains := retention.ChainSizes(list) // before a query narrows the list
			if c.NArg() == 1 {
				list = selectBackup(list, query)
				if len(list) == 0 {
					g.log.Warn("no backup matches", "query", query)
				}
			}
			switch {
			case asJSON:
				if list == nil {
					list = []*archive.Sentinel{}
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			case asCSV:
				return writeCSV(g, list, detail, chains)
			default:
				return writeTable(g, list, detail, chains)
			}
		},
	}
}

func listRow(sn *archive.Sentinel, detail bool) []string {
	row := []string{sn.Name, sn.FinishTime.Format(time.RFC3339), strconv.FormatInt(sn.ExpandedSize, 10),
		sn.StartSegment, sn.StartOffset, sn.StopSegment, sn.StopOffset}
	if detail {
		row = append(row, strconv.FormatInt(sn.StoredSize, 10), sn.Compression, strconv.FormatBool(sn.Encrypted),
			strconv.Itoa(sn.PGVersion), strconv.FormatUint(uint64(sn.Timeline), 10), sn.StartLSN, sn.FinishLSN,
			sn.StartTime.Format(time.RFC3339), strconv.FormatBool(sn.Permanent))
	}
	return row
}

var detailColumns = []string{"stored_size_bytes", "compression", "encrypted", "pg_version", "timeline",
	"start_lsn", "finish_lsn", "start_time", "permanent"}

func header(detail bool) []string {
	h := append([]string{}, walEColumns...)
	if detail {
		h = append(h, detailColumns...)
	}
	return h
}

func writeCSV(g *globals, list []*archive.Sentinel, detail bool, chains map[string]int64) error {
	w := csv.NewWriter(g.stdout)
	w.Write(withDelta(list, withSource(list, header(detail), nil), nil, chains))
	for _, sn := range list {
		w.Write(withDelta(list, withSource(list, listRow(sn, detail), sn), sn, chains))
	}
	w.Flush()
	return w.Error()
}

// writeTable prints WAL-E's format: a header and one line per backup,
// fields separated by tabs, so scripts that split WAL-E's output on tabs
// read walnut's.
func writeTable(g *globals, list []*archive.Sentinel, detail bool, chains map[string]int64) error {
	var b strings.Builder
	b.WriteString(strings.Join(withDelta(list, withSource(list, header(detail), nil), nil, chains), "\t") + "\n")
	for _, sn := range list {
		b.WriteString(strings.Join(withDelta(list, withSource(list, listRow(sn, detail), sn), sn, chains), "\t") + "\n")
	}
	_, err := io.WriteString(g.stdout, b.String())
	return err
}

// backupNameRE is the form of a backup name, WAL-E's and walnut's.
var backupNameRE = regexp.MustCompile(`^base_[0-9A-F]{24}_[0-9A-F]{8}$`)

// selectBackup keeps the backup query names: LATEST is the one that
// finished last (list is oldest first).
func selectBackup(list []*archive.Sentinel, query string) []*archive.Sentinel {
	if query == "LATEST" {
		if len(list) == 0 {
			return nil
		}
		return list[len(list)-1:]
	}
	for _, sn := range list {
		if sn.Name == query {
			return []*archive.Sentinel{sn}
		}
	}
	return nil
}

// withSource adds a last column, source ("wal-e" for a backup WAL-E made),
// when the list holds one of WAL-E's: a walnut-only archive lists as
// before, and scripts reading WAL-E's columns by position still work.
// withDelta adds each delta's base and its chain's stored size (-1: a
// backup of the chain is gone) when a listed backup is a delta.
func withDelta(list []*archive.Sentinel, row []string, sn *archive.Sentinel, chains map[string]int64) []string {
	if !slices.ContainsFunc(list, (*archive.Sentinel).IsDelta) {
		return row
	}
	if sn == nil {
		return append(row, "delta_base", "chain_stored_size_bytes")
	}
	return append(row, sn.DeltaBase, strconv.FormatInt(chains[sn.Name], 10))
}

func withSource(list []*archive.Sentinel, row []string, sn *archive.Sentinel) []string {
	for _, b := range list {
		if b.IsWALE() {
			if sn == nil {
				return append(row, "source")
			}
			return append(row, sn.Source)
		}
	}
	return row
}
