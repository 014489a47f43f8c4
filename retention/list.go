package retention

import (
	"context"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/storage"
)

// List returns the committed backups, oldest first by finish time.
func List(ctx context.Context, s storage.Store) ([]*archive.Sentinel, error) {
	if err := archive.Require(ctx, s); err != nil {
		return nil, err
	}
	return archive.ListBackups(ctx, s)
}

// ChainSizes gives, for each backup of list, the stored size of it and
// every backup it is restored over; -1 for a delta whose chain lacks a
// backup.
func ChainSizes(list []*archive.Sentinel) map[string]int64 {
	byName := make(map[string]*archive.Sentinel, len(list))
	for _, sn := range list {
		byName[sn.Name] = sn
	}
	out := make(map[string]int64, len(list))
	for _, sn := range list {
		size := int64(0)
		b := sn
		for ; b != nil; b = byName[b.DeltaBase] {
			size += b.StoredSize
			if !b.IsDelta() {
				break
			}
		}
		if b == nil {
			size = -1
		}
		out[sn.Name] = size
	}
	return out
}
