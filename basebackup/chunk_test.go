package basebackup

import (
	"bytes"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/restore"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/tarball"
)

// A file larger than the chunk size is packed by every worker, chunk by
// chunk, listed once in the manifest with its whole size and CRC32C, and
// restored whole.
func TestChunkedFilePackedByAllWorkers(t *testing.T) {
	dir := smallCluster(t)
	big := make([]byte, 2<<20+12345)
	r := rand.New(rand.NewPCG(9, 10))
	for i := range big {
		big[i] = byte(r.Uint32() % 7)
	}
	bigPath := filepath.Join(dir, "base", "5", "99999")
	if err := os.WriteFile(bigPath, big, 0o600); err != nil {
		t.Fatal(err)
	}
	s := mem.New()
	enc := archive.Encoding{Codec: compression.Default()}
	name := "base_000000010000000000000002_00000028"
	p := &packer{store: s, enc: enc, name: name, limit: 1 << 30, chunk: 128 << 10, log: slog.New(slog.DiscardHandler)}
	if err := p.run(t.Context(), dir, nil, "PG_15_", 2); err != nil {
		t.Fatal(err)
	}
	var f tarball.File
	for _, e := range p.files {
		if e.Path == "base/5/99999" {
			f = e
		}
		if e.Path != "base/5/99999" && len(e.Chunks) > 0 {
			t.Errorf("%s (%d bytes) chunked", e.Path, e.Size)
		}
	}
	if f.Size != int64(len(big)) || len(f.Chunks) != 17 {
		t.Fatalf("manifest entry: %d bytes in %d chunks, want %d in 17", f.Size, len(f.Chunks), len(big))
	}
	if f.CRC32C != crc32c(big) {
		t.Errorf("manifest CRC32C %08x, file's %08x", f.CRC32C, crc32c(big))
	}
	parts := map[int]bool{}
	for _, c := range f.Chunks {
		parts[c.Partition] = true
	}
	if len(parts) != 2 {
		t.Errorf("chunks in partitions %v; want both workers' partitions", parts)
	}
	if archive.ManifestFormat(p.files) != archive.ManifestFormatChunked {
		t.Error("manifest of a chunked backup not marked as format 2")
	}

	ctl, err := os.ReadFile(filepath.Join(dir, archive.ControlFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.putControl(t.Context(), "START WAL LOCATION: 0/2000028\n", "", ctl); err != nil {
		t.Fatal(err)
	}
	sn := &archive.Sentinel{Format: archive.FormatVersion, Name: name, Partitions: int(p.next.Load()), Compression: enc.Codec.Name(),
		ManifestKey: archive.ManifestKey(name, enc.Ext()), ControlKey: archive.ControlKey(name, enc.Ext()), FinishTime: time.Now()}
	if _, err := archive.PutManifest(t.Context(), s, sn.ManifestKey, enc, &archive.Manifest{Format: archive.ManifestFormat(p.files), Name: name, Files: p.files}); err != nil {
		t.Fatal(err)
	}
	if err := archive.CheckIdentity(t.Context(), s, 7, 150000, 16<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.PutJSON(t.Context(), s, archive.SentinelKey(name), sn); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "restore")
	if _, err := restore.Run(t.Context(), restore.Options{Store: s, Dest: dest, Name: "LATEST", Concurrency: 2, Log: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dest, "base", "5", "99999"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("restored file differs")
	}
}

// The walk's size is the file's size in the backup: chunks of a file that
// shrank are zeros, and the manifest still covers the whole file.
func TestChunkedFileShrunkWhileRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, bytes.Repeat([]byte{1}, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 300); err != nil {
		t.Fatal(err)
	}
	p := &packer{chunked: map[string]*tarball.File{"f": {Path: "f", Type: tarball.TypeFile, Size: 1000, Mode: 0o600}},
		log: slog.New(slog.DiscardHandler)}
	var buf bytes.Buffer
	tw := tarball.NewWriter(&buf)
	for off := int64(0); off < 1000; off += 400 {
		it := walkItem{Name: "f", Path: path, Info: info, Chunk: &chunkItem{Offset: off, Size: min(400, 1000-off)}}
		if _, err := p.add(tw, it, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.finishChunked(); err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Repeat([]byte{1}, 300), make([]byte, 700)...)
	if f := p.files[0]; f.CRC32C != crc32c(want) || f.Size != 1000 {
		t.Errorf("manifest: %d bytes CRC32C %08x, want 1000 bytes %08x", f.Size, f.CRC32C, crc32c(want))
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
