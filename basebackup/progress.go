package basebackup

import (
	"context"

	"github.com/walnut-pg/walnut/archive"
)

// estimateSize sums the sizes of the files a backup will read, for a
// progress bar's total. A file that changes or fails to stat only makes the
// estimate a little off, so errors end the count instead of the backup.
func estimateSize(ctx context.Context, dataDir string, tablespaces []archive.Tablespace, versionDir string) int64 {
	var total int64
	w := &walker{versionDir: versionDir, skippedLink: func(string) {}, emit: func(it walkItem) error {
		if it.Info.Mode().IsRegular() {
			total += it.Info.Size()
		}
		return nil
	}}
	_ = w.walkCluster(ctx, dataDir, tablespaces)
	return total
}
