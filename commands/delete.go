package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/retention"
	"github.com/walnut-pg/walnut/storage"
)

func deleteCommand(g *globals) *cli.Command {
	var (
		confirm, asJSON bool
		dryRun          bool
		grace           time.Duration
		before          string
	)
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete old backups and the WAL no kept backup needs (dry run unless --confirm)",
		ArgsUsage: "retain N | before NAME | before SEGMENT | before --time TIMESTAMP | garbage | everything",
		Description: "retain N         keep the newest N backups (by finish time) and the WAL from the oldest one's start on\n" +
			"before NAME      keep NAME (or LATEST) and every backup that finished after it\n" +
			"before SEGMENT   (a WAL file name, as WAL-E took) keep the first backup that starts at or after\n" +
			"                 SEGMENT (timeline aside) and every backup that finished after it\n" +
			"before --time T  keep the oldest backup finished at or after T and every newer one\n" +
			"garbage          only what no backup needs: WAL older than the oldest backup, abandoned unfinished backups,\n" +
			"                 and in a file:// archive the temp files of uploads killed midway, once older than --grace\n" +
			"everything       every backup, all WAL and walnut.json: the prefix can start a new archive\n" +
			"Permanent backups (backup-mark) and the WAL from their start to their stop segment are kept by\n" +
			"all but everything. Backups without a sentinel (failed or killed backup-push) go once their\n" +
			"newest object is older than --grace; younger ones may be running and are kept with their WAL.\n" +
			"Lists what would go and deletes nothing unless --confirm.\n" + varsHelp("WALNUT_PREFIX"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "confirm", Usage: "delete; without it, only list what would go", Destination: &confirm},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "only list what would go (the default; WAL-E's)", Destination: &dryRun},
			&cli.BoolFlag{Name: "json", Usage: "print the plan (and what was deleted) as JSON", Destination: &asJSON},
			&cli.DurationFlag{Name: "grace", Value: retention.DefaultGrace, Usage: "age after which a backup without a sentinel (and, for garbage, a temp file) counts as abandoned", Destination: &grace},
			&cli.StringFlag{Name: "time", Usage: "with before: delete backups that finished before `TIMESTAMP` (RFC 3339, e.g. 2026-11-26T03:00:00Z)", Destination: &before},
		},
		Action: func(c *cli.Context) error {
			if dryRun && confirm {
				// WAL-E ran a dry run then; a command line that says both
				// is refused rather than guessed at.
				return usageError(fmt.Errorf("delete: --dry-run and --confirm say opposite things: drop --confirm for a dry run, or --dry-run to delete"))
			}
			p, err := deletePolicy(c.Args().Slice(), before)
			if err != nil {
				return usageError(fmt.Errorf("delete: %w", err))
			}
			if grace < 0 {
				return usageError(fmt.Errorf("delete: --grace %s is negative", grace))
			}
			p.Grace = grace
			store, err := g.openStore(c.Context)
			if err != nil {
				return err
			}
			defer store.Close()
			if p.Mode == retention.Before && pgcontrol.IsWALFileName(p.Name) {
				if p.Name, err = backupFromSegment(c, store, p.Name); err != nil {
					return err
				}
				g.log.Info("deleting before the first backup that starts at or after the segment", "backup", p.Name)
			}
			plan, err := retention.Delete(c.Context, retention.Options{Store: store, Policy: p, Confirm: confirm, Log: g.log})
			if plan != nil {
				var werr error
				if asJSON {
					werr = writeDeleteJSON(g.stdout, plan, confirm)
				} else {
					werr = writeDeleteText(g.stdout, plan, confirm, p.Grace)
				}
				if err == nil {
					err = werr
				}
			}
			if err != nil {
				return fmt.Errorf("delete: %w", err)
			}
			return nil
		},
	}
}

// deletePolicy reads the form of delete from its arguments.
func deletePolicy(args []string, beforeTime string) (retention.Policy, error) {
	if len(args) == 0 {
		return retention.Policy{}, fmt.Errorf("say what to delete: retain N, before NAME, before --time TIMESTAMP, garbage or everything")
	}
	mode, rest := args[0], args[1:]
	if beforeTime != "" && mode != "before" {
		return retention.Policy{}, fmt.Errorf("--time goes with before, not %s", mode)
	}
	want := func(n int, what string) error {
		if len(rest) != n {
			return fmt.Errorf("%s: want %s, got %d arguments", mode, what, len(rest))
		}
		return nil
	}
	switch mode {
	case "retain":
		if err := want(1, "a number of backups"); err != nil {
			return retention.Policy{}, err
		}
		n, err := strconv.Atoi(rest[0])
		if err != nil || n < 1 {
			return retention.Policy{}, fmt.Errorf("retain %q: want a number of backups, at least 1 (delete everything removes all)", rest[0])
		}
		return retention.Policy{Mode: retention.Retain, Retain: n}, nil
	case "before":
		if beforeTime != "" {
			if err := want(0, "a backup name or --time, not both"); err != nil {
				return retention.Policy{}, err
			}
			t, err := parseTimestamp(beforeTime)
			if err != nil {
				return retention.Policy{}, err
			}
			return retention.Policy{Mode: retention.BeforeTime, Time: t}, nil
		}
		if err := want(1, "a backup name, LATEST or --time TIMESTAMP"); err != nil {
			return retention.Policy{}, err
		}
		return retention.Policy{Mode: retention.Before, Name: rest[0]}, nil
	case "garbage":
		if err := want(0, "no arguments"); err != nil {
			return retention.Policy{}, err
		}
		return retention.Policy{Mode: retention.Garbage}, nil
	case "everything":
		if err := want(0, "no arguments"); err != nil {
			return retention.Policy{}, err
		}
		return retention.Policy{Mode: retention.Everything}, nil
	case "old-versions":
		// WAL-E removed objects of its earlier storage formats. walnut
		// writes one format, and retires old backups by age.
		return retention.Policy{}, fmt.Errorf("old-versions: walnut writes one archive format, so nothing is of an old version; retire old backups and their WAL with delete retain N or delete before NAME")
	}
	return retention.Policy{}, fmt.Errorf("unknown form %q: want retain, before, garbage or everything", mode)
}

// Timestamps must say their zone: a cron job and the server it cleans up
// after need not share one.
var timestampLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05Z07", "2006-01-02 15:04:05Z07"}

func parseTimestamp(s string) (time.Time, error) {
	for _, l := range timestampLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--time %q: want RFC 3339 with a zone, e.g. 2026-11-26T03:00:00Z or '2026-11-26 03:00:00+01'", s)
}

func writeDeleteJSON(w io.Writer, plan *retention.Plan, confirm bool) error {
	out := struct {
		DryRun bool `json:"dry_run"`
		*retention.Plan
		Objects int   `json:"objects"`
		Bytes   int64 `json:"bytes"`
	}{!confirm, plan, plan.Objects(), plan.Bytes()}
	if out.Backups == nil {
		out.Backups = []retention.BackupDeletion{}
	}
	if out.Unfinished == nil {
		out.Unfinished = []retention.UnfinishedBackup{}
	}
	if out.WAL == nil {
		out.WAL = []retention.WALRange{}
	}
	if out.Temps == nil {
		out.Temps = []retention.TempFile{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// writeDeleteText prints one line per backup and WAL range that goes (or
// went), then one summary line per kind of object.
func writeDeleteText(w io.Writer, plan *retention.Plan, confirm bool, grace time.Duration) error {
	verb := func(done bool) string {
		switch {
		case !confirm:
			return "would delete"
		case done:
			return "deleted"
		}
		return "not deleted"
	}
	var b strings.Builder
	var n struct {
		backups, unfinished, wal, temps int
		bObj, uObj                      int
		bBytes, uBytes, wBytes, tBytes  int64
	}
	for _, d := range plan.Backups {
		fmt.Fprintf(&b, "%s backup %s (finished %s, %d objects, %s)\n", verb(d.Deleted), d.Name, d.FinishTime.UTC().Format(time.RFC3339), d.Objects, humanBytes(d.Bytes))
		if d.Deleted || !confirm {
			n.backups++
			n.bObj += d.Objects
			n.bBytes += d.Bytes
		}
	}
	for _, u := range plan.Unfinished {
		why := "no sentinel, last written " + u.LastModified.UTC().Format(time.RFC3339)
		if u.InterruptedDelete {
			why = "left by an interrupted delete"
		}
		fmt.Fprintf(&b, "%s unfinished backup %s (%s, %d objects, %s)\n", verb(u.Deleted), u.Name, why, u.Objects, humanBytes(u.Bytes))
		if u.Deleted || !confirm {
			n.unfinished++
			n.uObj += u.Objects
			n.uBytes += u.Bytes
		}
	}
	for _, name := range plan.Kept.Unfinished {
		fmt.Fprintf(&b, "kept unfinished backup %s (possibly running: younger than %s) and the WAL from its start\n", name, grace)
	}
	for _, r := range plan.WAL {
		span := r.First
		if r.Last != r.First {
			span += " .. " + r.Last
		}
		fmt.Fprintf(&b, "%s WAL timeline %d: %s (%d objects, %s)\n", verb(r.Deleted), r.Timeline, span, r.Objects, humanBytes(r.Bytes))
		if r.Deleted || !confirm {
			n.wal += r.Objects
			n.wBytes += r.Bytes
		}
	}
	for _, f := range plan.Temps {
		fmt.Fprintf(&b, "%s temp file %s (left by an upload that did not finish, last written %s, %s)\n",
			verb(f.Deleted), f.Key, f.LastModified.UTC().Format(time.RFC3339), humanBytes(f.Bytes))
		if f.Deleted || !confirm {
			n.temps++
			n.tBytes += f.Bytes
		}
	}
	gone := "deleted"
	if !confirm {
		gone = "to delete"
	}
	fmt.Fprintf(&b, "backups: %d %s (%d objects, %s), %d kept", n.backups, gone, n.bObj, humanBytes(n.bBytes), len(plan.Kept.Backups))
	if k := len(plan.Kept.Permanent); k > 0 {
		fmt.Fprintf(&b, " (%d permanent)", k)
	}
	fmt.Fprintf(&b, "\nunfinished backups: %d %s (%d objects, %s), %d kept as possibly running (younger than %s)\n",
		n.unfinished, gone, n.uObj, humanBytes(n.uBytes), len(plan.Kept.Unfinished), grace)
	fmt.Fprintf(&b, "WAL: %d objects %s (%s), %d kept", n.wal, gone, humanBytes(n.wBytes), plan.Kept.WALObjects)
	if plan.Kept.WALFrom != "" {
		fmt.Fprintf(&b, " (all from %s on, any timeline)", plan.Kept.WALFrom)
	}
	b.WriteString("\n")
	if plan.Mode == retention.Garbage {
		fmt.Fprintf(&b, "temp files: %d %s (%s), %d kept as possibly in use (younger than %s)\n",
			n.temps, gone, humanBytes(n.tBytes), plan.Kept.TempFiles, grace)
	}
	if plan.Mode == retention.Everything {
		fmt.Fprintf(&b, "other objects: %d %s\n", len(plan.Other), gone)
		state := "absent"
		if plan.Identity {
			state = gone
		}
		fmt.Fprintf(&b, "archive identity (walnut.json): %s\n", state)
	}
	for _, note := range plan.Notes {
		fmt.Fprintf(&b, "note: %s\n", note)
	}
	switch {
	case plan.Objects() == 0:
		b.WriteString("nothing to delete\n")
	case !confirm:
		b.WriteString("dry run: nothing deleted; add --confirm to delete\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// backupFromSegment turns WAL-E's `delete before SEGMENT` into walnut's
// `before NAME`: the oldest backup (by finish time) that starts at or after
// the segment's position. WAL-E compared positions without the timeline,
// and so does this. With no such backup every backup would go, which is
// delete everything's job, not a side effect of a segment name.
func backupFromSegment(c *cli.Context, store storage.Store, segment string) (string, error) {
	list, err := retention.List(c.Context, store)
	if err != nil {
		return "", fmt.Errorf("delete: %w", err)
	}
	want := segmentPosition(segment)
	for _, sn := range list {
		if pgcontrol.IsWALFileName(sn.StartSegment) && segmentPosition(sn.StartSegment) >= want {
			return sn.Name, nil
		}
	}
	return "", usageError(fmt.Errorf("delete: before %s: no backup starts at or after that segment, so every backup would go; use delete everything to remove them all", segment))
}

// segmentPosition is a WAL file name's position without its timeline:
// the log and segment numbers, whatever the segment size.
func segmentPosition(name string) uint64 {
	n, _ := strconv.ParseUint(name[8:24], 16, 64)
	return n
}
