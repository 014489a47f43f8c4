package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/retention"
)

func backupMarkCommand(g *globals) *cli.Command {
	var impermanent bool
	return &cli.Command{
		Name:      "backup-mark",
		Usage:     "make a backup permanent, so that delete keeps it and the WAL it needs (--impermanent undoes it)",
		ArgsUsage: "NAME|LATEST",
		Description: "A permanent backup survives every delete but delete everything, with the WAL from its start\n" +
			"to its stop segment: enough to restore it to its end point. The flag is stored in the\n" +
			"backup's sentinel, rewritten in one atomic put.\n" + varsHelp("WALNUT_PREFIX"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "impermanent", Usage: "make the backup ordinary again, subject to delete", Destination: &impermanent},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError(fmt.Errorf("backup-mark: want one backup NAME or LATEST, got %d arguments", c.NArg()))
			}
			store, err := g.openStore(c.Context)
			if err != nil {
				return err
			}
			defer store.Close()
			name, changed, err := retention.Mark(c.Context, retention.MarkOptions{Store: store, Name: c.Args().First(), Permanent: !impermanent})
			if err != nil {
				return fmt.Errorf("backup-mark: %w", err)
			}
			state := "permanent"
			if impermanent {
				state = "impermanent"
			}
			if changed {
				fmt.Fprintf(g.stdout, "%s is now %s\n", name, state)
			} else {
				fmt.Fprintf(g.stdout, "%s was already %s\n", name, state)
			}
			return nil
		},
	}
}
