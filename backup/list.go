package backup

import (
	"context"

	"github.com/walnut-pg/walnut/storage"
)

// List returns the committed backups, oldest first by finish time.
func List(ctx context.Context, s storage.Store) ([]*Sentinel, error) {
	return listSentinels(ctx, s)
}
