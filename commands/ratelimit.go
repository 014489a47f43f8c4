package commands

import (
	"github.com/walnut-pg/walnut/storage"
)

// rateLimit reads WALNUT_RATE_LIMIT in bytes per second, 0 for none. It is
// read before the store is opened, so a bad value fails before any work.
func (g *globals) rateLimit() (int64, error) {
	bps, err := g.env.ByteRate("WALNUT_RATE_LIMIT")
	if err != nil {
		return 0, usageError(err)
	}
	return bps, nil
}

// limitRate applies the limit to a backup's transfers. WAL is never
// limited: archiving that falls behind fills pg_wal, and a restore that
// waits on WAL would wait on the limit.
func limitRate(s storage.Store, bps int64) storage.Store {
	if bps <= 0 {
		return s
	}
	return storage.WithRateLimit(s, bps)
}
