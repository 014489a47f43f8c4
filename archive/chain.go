package archive

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/tarball"
)

// ResolveChain returns the backups a restore of last needs, its chain's
// full backup first and last last, refusing a chain with a backup gone or
// not the one the delta after it was taken over.
func ResolveChain(ctx context.Context, s storage.Store, last *Sentinel) ([]*Sentinel, error) {
	chain := []*Sentinel{last}
	for b := last; b.IsDelta(); {
		if err := ValidBackupName(b.DeltaBase); err != nil {
			return nil, fmt.Errorf("backup %s: base %w", b.Name, err)
		}
		base, err := ReadSentinel(ctx, s, b.DeltaBase)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("backup %s is a delta over backup %s, which is gone: the chain of %s cannot be restored", b.Name, b.DeltaBase, last.Name)
		}
		if err != nil {
			return nil, err
		}
		if base.SystemIdentifier != b.SystemIdentifier || base.StartLSN != b.DeltaBaseLSN || base.DeltaDepth != b.DeltaDepth-1 {
			return nil, fmt.Errorf("backup %s names %s as its base, but that backup (system %s, start %s, step %d) is not the one it was taken over (system %s, start %s, step %d)",
				b.Name, base.Name, base.SystemIdentifier, base.StartLSN, base.DeltaDepth, b.SystemIdentifier, b.DeltaBaseLSN, b.DeltaDepth-1)
		}
		chain = append(chain, base)
		b = base
	}
	slices.Reverse(chain)
	return chain, nil
}

// Entries are the manifest's tar entries: its files, and each paged
// file's entry of changed pages as the regular file it is in the tar.
func (m *Manifest) Entries() []tarball.File {
	if len(m.Paged) == 0 {
		return m.Files
	}
	out := append(make([]tarball.File, 0, len(m.Files)+len(m.Paged)), m.Files...)
	for _, p := range m.Paged {
		out = append(out, tarball.File{Path: p.Path + PagedSuffix, Type: tarball.TypeFile, Size: p.EntrySize(),
			Mode: p.Mode, ModTime: p.ModTime, CRC32C: p.CRC32C, Partition: p.Partition})
	}
	return out
}
