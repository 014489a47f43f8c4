package commands

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/status"
	"github.com/walnut-pg/walnut/storage/all"
)

// Nagios plugin exit codes, status's alone: status.State's numbers.
const (
	ExitWarning  = int(status.Warning)
	ExitCritical = int(status.Critical)
	ExitUnknown  = int(status.Unknown)
)

func statusCommand(g *globals) *cli.Command {
	var (
		asJSON, noServer   bool
		promFile, alertDir string
		timeout            time.Duration
	)
	flags := []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print every figure as JSON (field names in the README)", Destination: &asJSON},
		&cli.StringFlag{Name: "prometheus-file", Usage: "write node_exporter textfile metrics to `FILE` (atomically; name it *.prom)", Destination: &promFile},
		&cli.StringFlag{Name: "alert-dir", Usage: "keep one empty file per active problem in `DIR`, removed when it clears", Destination: &alertDir},
		&cli.BoolFlag{Name: "no-server", Usage: "report the archive alone, without connecting to PostgreSQL", Destination: &noServer},
		&cli.DurationFlag{Name: "timeout", Value: status.DefaultTimeout, Usage: "report the server, or a store silent for this long (its retries included), unreachable", Destination: &timeout},
	}
	names := []string{"WALNUT_PREFIX", "PG*"}
	for _, l := range status.LimitSettings {
		flags = append(flags, &cli.StringFlag{Name: l.Flag, Usage: l.Usage + " (default $" + l.Env + ", else " + l.Default + ")"})
		names = append(names, l.Env)
	}
	return &cli.Command{
		Name:      "status",
		Usage:     "is archiving healthy, and how old is the newest backup? (a Nagios check; metrics and alert files)",
		ArgsUsage: "[PGDATA]",
		Description: "Reads the archive and, connected as backup-push is (libpq's PG* variables), the server's\n" +
			"pg_stat_archiver, WAL position, pg_stat_replication and replication slots. The first line says\n" +
			"why; the exit code is Nagios's: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. A limit is CRIT or\n" +
			"WARN,CRIT; a figure above a bound is in that state. PGDATA, if given, must be the server's data\n" +
			"directory. status never writes to the archive.\n" + varsHelp(names...),
		Flags: flags,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return withCode(ExitUnknown, err)
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return withCode(ExitUnknown, fmt.Errorf("status: want at most one PGDATA, got %d arguments", c.NArg()))
			}
			if timeout <= 0 {
				return withCode(ExitUnknown, fmt.Errorf("status: --timeout %s: want a positive duration", timeout))
			}
			limits, err := status.ReadLimits(func(f string) (string, bool) { return c.String(f), c.IsSet(f) }, g.env.Get)
			if err != nil {
				return withCode(ExitUnknown, err)
			}
			prefix, _, err := g.env.Prefix()
			if err != nil {
				return withCode(ExitUnknown, err)
			}
			store, err := all.Open(c.Context, prefix, g.env.Getenv, g.log)
			if err != nil {
				return withCode(ExitUnknown, err)
			}
			defer store.Close()
			opts := status.Options{
				Store:          store,
				Archive:        all.Redact(prefix),
				DataDir:        c.Args().First(),
				Limits:         limits,
				PrometheusFile: promFile,
				AlertDir:       alertDir,
				Timeout:        timeout,
				Log:            g.log,
			}
			if !noServer {
				opts.ConnString = g.env.PGConnString()
			}
			// status keeps little alive but allocates for every object
			// it lists; half the usual GC target keeps its peak RSS near
			// what is live (measured on 100,000 WAL objects: bench/status.sh).
			debug.SetGCPercent(50)
			r, runErr := status.Run(c.Context, opts)
			err = status.Write(g.stdout, r, asJSON)
			code := int(r.State)
			if runErr != nil || err != nil {
				// The check ran, but what monitoring reads may be stale:
				// say so, and never report better than UNKNOWN.
				for _, e := range []error{runErr, err} {
					if e != nil {
						g.log.Error("status: " + oneLine(e.Error()))
					}
				}
				code = int(status.Worst(r.State, status.Unknown))
			}
			return quietExit(code)
		},
	}
}
