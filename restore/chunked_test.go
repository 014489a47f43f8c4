package restore

import (
	"bytes"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/tarball"
)

const relation = "base/5/16385"

// chunkedBackup stores a backup whose relation file is split in chunks of
// n bytes dealt round robin over two partitions, as two backup workers
// would; skip names chunk offsets left out of the partitions (the manifest
// still lists them) and twice ones stored in both.
type chunkedBackup struct {
	data        []byte
	n           int
	skip, twice map[int64]bool
}

func (cb chunkedBackup) store(t *testing.T) storage.Store {
	t.Helper()
	ctx := t.Context()
	s := mem.New()
	enc := archive.Encoding{Codec: compression.Default()}
	name := "base_000000010000000000000002_00000028"
	now := time.Now().Truncate(time.Second)
	rel := tarball.File{Path: relation, Type: tarball.TypeFile, Size: int64(len(cb.data)), Mode: 0o600, ModTime: now}
	var files []tarball.File
	for part := 1; part <= 2; part++ {
		_, err := archive.PutStream(ctx, s, archive.PartitionKey(name, part, enc.Ext()), enc, func(w io.Writer) error {
			tw := tarball.NewWriter(w)
			if part == 1 {
				for _, d := range []string{"base", "base/5"} {
					f, err := tw.AddDir(d, 0o700, now)
					if err != nil {
						return err
					}
					f.Partition = 1
					files = append(files, f)
				}
				f, _, err := tw.AddFile("PG_VERSION", strings.NewReader("15\n"), 3, 0o600, now)
				if err != nil {
					return err
				}
				f.Partition = 1
				files = append(files, f)
			}
			for i, off := 0, 0; off < len(cb.data); i, off = i+1, off+cb.n {
				if i%2 != part-1 && !(cb.twice[int64(off)] && part == 2) {
					continue
				}
				p := cb.data[off:min(off+cb.n, len(cb.data))]
				if cb.skip[int64(off)] {
					if part == 1 || i%2 == 1 {
						rel.Chunks = append(rel.Chunks, tarball.Chunk{Offset: int64(off), Size: int64(len(p)), CRC32C: crc(p), Partition: part})
					}
					continue
				}
				c, _, err := tw.AddChunk(relation, bytes.NewReader(p), int64(off), int64(len(p)), 0o600, now)
				if err != nil {
					return err
				}
				c.Partition = part
				if i%2 == part-1 {
					rel.Chunks = append(rel.Chunks, c)
				}
			}
			return tw.Close()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sortChunks(rel.Chunks)
	rel.CRC32C = 0
	for _, c := range rel.Chunks {
		rel.CRC32C = tarball.CombineCRC32C(rel.CRC32C, c.CRC32C, c.Size)
	}
	files = append(files, rel)
	ctl, err := os.ReadFile(filepath.Join("..", "testdata", "pgcontrol", "pg15_plain.control"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = archive.PutStream(ctx, s, archive.ControlKey(name, enc.Ext()), enc, func(w io.Writer) error {
		tw := tarball.NewWriter(w)
		for _, e := range []struct {
			name string
			b    []byte
		}{{"backup_label", []byte("START WAL LOCATION: 0/2000028\n")}, {archive.ControlFile, ctl}} {
			f, _, err := tw.AddFile(e.name, bytes.NewReader(e.b), int64(len(e.b)), 0o600, now)
			if err != nil {
				return err
			}
			f.Partition = archive.ControlPartition
			files = append(files, f)
		}
		return tw.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	sn := &archive.Sentinel{Format: archive.FormatVersion, Name: name, Partitions: 2, Compression: enc.Codec.Name(),
		ManifestKey: archive.ManifestKey(name, enc.Ext()), ControlKey: archive.ControlKey(name, enc.Ext()), FinishTime: now}
	m := &archive.Manifest{Format: archive.ManifestFormat(files), Name: name, Files: files}
	if _, err := archive.PutManifest(ctx, s, sn.ManifestKey, enc, m); err != nil {
		t.Fatal(err)
	}
	if err := archive.CheckIdentity(ctx, s, 7, 150000, 16<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.PutJSON(ctx, s, archive.SentinelKey(name), sn); err != nil {
		t.Fatal(err)
	}
	return s
}

func sortChunks(cs []tarball.Chunk) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].Offset < cs[j-1].Offset; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

func crc(b []byte) uint32 { return crc32c(b) }

func relationData() []byte {
	rng := rand.New(rand.NewPCG(5, 6))
	b := make([]byte, 3<<20+777)
	for i := range b {
		b[i] = byte(rng.Uint32() % 16) // compressible, like a table
	}
	return b
}

func TestRestoreChunkedFile(t *testing.T) {
	data := relationData()
	s := chunkedBackup{data: data, n: 256 << 10}.store(t)
	dest := filepath.Join(t.TempDir(), "restore")
	res, err := Run(t.Context(), Options{Store: s, Dest: dest, Name: "LATEST", Concurrency: 2, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dest, relation))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("restored relation differs (%d bytes, want %d)", len(got), len(data))
	}
	if res.Files != 4 || res.Bytes != int64(len(data))+3+int64(len("START WAL LOCATION: 0/2000028\n"))+8192 {
		t.Errorf("restored %d files, %d bytes", res.Files, res.Bytes)
	}
	ents, err := os.ReadDir(filepath.Join(dest, "base/5"))
	if err != nil || len(ents) != 1 {
		t.Errorf("base/5 holds %d entries (%v), want the relation alone", len(ents), err)
	}
}

// A chunk the manifest lists but no partition holds, or one stored twice,
// fails the restore with one line naming the file, and leaves nothing.
func TestRestoreChunkedCorrupt(t *testing.T) {
	data := relationData()
	const n = 256 << 10
	for name, cb := range map[string]chunkedBackup{
		"missing":   {data: data, n: n, skip: map[int64]bool{3 * n: true}},
		"duplicate": {data: data, n: n, twice: map[int64]bool{4 * n: true}},
	} {
		t.Run(name, func(t *testing.T) {
			s := cb.store(t)
			dest := filepath.Join(t.TempDir(), "restore")
			_, err := Run(t.Context(), Options{Store: s, Dest: dest, Name: "LATEST", Concurrency: 2, Log: slog.New(slog.DiscardHandler)})
			if err == nil {
				t.Fatal("restore of a corrupt backup succeeded")
			}
			t.Log(err)
			if !errors.Is(err, tarball.ErrCorrupt) || !strings.Contains(err.Error(), relation) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line naming %s as corrupt: %v", relation, err)
			}
			if ents, _ := os.ReadDir(dest); len(ents) != 0 {
				t.Errorf("the failed restore left %d entries in %s", len(ents), dest)
			}
		})
	}
}

func crc32c(b []byte) uint32 {
	return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
}
