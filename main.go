// Command walnut is continuous archiving and point-in-time recovery for
// PostgreSQL.
package main

import (
	"os"
	"runtime/debug"
	"strings"

	"github.com/walnut-pg/walnut/commands"
)

func main() {
	tuneGC(os.Environ())
	os.Exit(commands.Main(os.Args, os.Environ(), os.Stdout, os.Stderr))
}

// gcPercent is walnut's GOGC unless the environment sets one. walnut's
// live heap is small (a few codec states and buffers, 12 MiB for wal-push
// storing 8 files at once) and the process is short-lived; Go's default
// lets the heap grow to twice the live data between collections, which
// measured 3 MiB of peak RSS for wal-push's pool of 8 (bench: e2e
// BenchmarkWALPushPeakRSS), for collections that cost a
// few milliseconds of CPU here.
const gcPercent = 50

func tuneGC(environ []string) {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GOGC=") {
			return
		}
	}
	debug.SetGCPercent(gcPercent)
}
