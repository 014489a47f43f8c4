package verify

import (
	"context"

	"github.com/walnut-pg/walnut/archive"
)

// checkChain reports a delta whose chain cannot be restored: a backup of
// it gone, or not the one the delta after it was taken over. The other
// backups of the chain are checked as backups of their own.
func (b *backupCheck) checkChain(ctx context.Context) {
	if _, err := archive.ResolveChain(ctx, b.o.Store, b.sn); err != nil {
		b.problems.add(archive.SentinelKey(b.sn.Name), "", "%v", err)
	}
	if b.m == nil {
		return
	}
	for _, p := range b.m.Paged {
		if p.Partition < 1 || p.Partition > b.sn.Partitions {
			b.problems.add(b.sn.ManifestKey, p.Path, "changed pages listed in partition %d, but the backup has %d", p.Partition, b.sn.Partitions)
		}
	}
}
