package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/retention"
)

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
			if c.NArg() == 1 && query != "LATEST" && !retention.IsBackupName(query) {
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
				list = retention.SelectBackup(list, query)
				if len(list) == 0 {
					g.log.Warn("no backup matches", "query", query)
				}
			}
			switch {
			case asJSON:
				return retention.WriteListJSON(g.stdout, list)
			case asCSV:
				return retention.WriteListCSV(g.stdout, list, detail, chains)
			default:
				return retention.WriteListTable(g.stdout, list, detail, chains)
			}
		},
	}
}
