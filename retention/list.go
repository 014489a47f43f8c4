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
