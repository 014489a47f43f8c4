package commands

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/retention"
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
			p, err := retention.ParsePolicy(c.Args().Slice(), before)
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
				seg := p.Name
				if p.Name, err = retention.BackupFromSegment(c.Context, store, seg); err != nil {
					return fmt.Errorf("delete: %w", err)
				}
				if p.Name == "" {
					return usageError(fmt.Errorf("delete: before %s: no backup starts at or after that segment, so every backup would go; use delete everything to remove them all", seg))
				}
				g.log.Info("deleting before the first backup that starts at or after the segment", "backup", p.Name)
			}
			plan, err := retention.Delete(c.Context, retention.Options{Store: store, Policy: p, Confirm: confirm, Log: g.log})
			if plan != nil {
				if werr := plan.Write(g.stdout, asJSON, confirm, p.Grace); err == nil {
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
