package archive_test

import (
	"context"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/tarball"
)

// A delta's chain comes back full backup first; a base gone, or one
// that is not the backup the delta was taken over, is refused by name.
func TestResolveChain(t *testing.T) {
	ctx := context.Background()
	s := mem.New()
	put := func(sn *archive.Sentinel) *archive.Sentinel {
		t.Helper()
		sn.SystemIdentifier = "7"
		if _, err := archive.PutJSON(ctx, s, archive.SentinelKey(sn.Name), sn); err != nil {
			t.Fatal(err)
		}
		return sn
	}
	full := put(&archive.Sentinel{Name: "base_000000010000000000000002_00000028", StartLSN: "0/2000028"})
	d1 := put(&archive.Sentinel{Name: "base_000000010000000000000004_00000028", StartLSN: "0/4000028",
		DeltaBase: full.Name, DeltaDepth: 1, DeltaBaseLSN: full.StartLSN})
	d2 := put(&archive.Sentinel{Name: "base_000000010000000000000006_00000028", StartLSN: "0/6000028",
		DeltaBase: d1.Name, DeltaDepth: 2, DeltaBaseLSN: d1.StartLSN})
	chain, err := archive.ResolveChain(ctx, s, d2)
	if err != nil || len(chain) != 3 || chain[0].Name != full.Name || chain[1].Name != d1.Name || chain[2].Name != d2.Name {
		t.Fatalf("chain of %s: %v, %v", d2.Name, chain, err)
	}
	if chain, err := archive.ResolveChain(ctx, s, full); err != nil || len(chain) != 1 {
		t.Fatalf("chain of a full backup: %v, %v", chain, err)
	}

	wrong := *d2
	wrong.DeltaBaseLSN = "0/5000028"
	if _, err := archive.ResolveChain(ctx, s, &wrong); err == nil || !strings.Contains(err.Error(), "not the one it was taken over") {
		t.Errorf("a base with another start LSN: %v", err)
	}
	if err := s.Delete(ctx, archive.SentinelKey(full.Name)); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.ResolveChain(ctx, s, d2); err == nil || !strings.Contains(err.Error(), full.Name+", which is gone") {
		t.Errorf("a chain whose full backup is gone: %v", err)
	}
	bad := *d1
	bad.DeltaBase = "../x"
	if _, err := archive.ResolveChain(ctx, s, &bad); err == nil {
		t.Error("a base name that is no backup name was followed")
	}
}

// A paged file is a tar entry of its own: name, record size, CRC32C.
func TestManifestEntries(t *testing.T) {
	m := &archive.Manifest{Files: []tarball.File{{Path: "PG_VERSION", Type: tarball.TypeFile, Size: 3, Partition: 1}},
		Paged: []archive.PagedFile{{Path: "base/5/16384", Size: 81920, Pages: 2, CRC32C: 42, Partition: 2}}}
	got := m.Entries()
	if len(got) != 2 || got[1].Path != "base/5/16384"+archive.PagedSuffix || got[1].Size != 2*archive.PageRecord ||
		got[1].CRC32C != 42 || got[1].Partition != 2 || got[1].Type != tarball.TypeFile {
		t.Fatalf("entries %+v", got)
	}
}
