package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/tarball"
)

// testArchive builds archives by hand in memory: walnut.json, WAL
// objects and backups, as wal-push and backup-push lay them out.
type testArchive struct {
	t     *testing.T
	s     *mem.Store
	enc   archive.Encoding
	sysid uint64
	seq   int // makes backups finish in the order they are made
	chunk int // > 0: files larger than this are stored in chunks
}

const seg = fixture.SegmentSize

func newTestArchive(t *testing.T, to *crypto.Recipients) *testArchive {
	t.Helper()
	sysid, _, err := pgcontrol.WALSegmentSystemIdentifier(fixture.WALHead(t, fixture.Plain))
	if err != nil {
		t.Fatal(err)
	}
	a := &testArchive{t: t, s: mem.New(), enc: archive.Encoding{Codec: compression.Default(), To: to}, sysid: sysid}
	if err := archive.CheckIdentity(context.Background(), a.s, sysid, 15, seg); err != nil {
		t.Fatal(err)
	}
	return a
}

// segment returns the content of a whole segment of the Plain cluster,
// as fixture.WriteSegmentBody writes it, without the round trip to disk.
func (a *testArchive) segment(name string, fill byte) []byte {
	a.t.Helper()
	b := bytes.Repeat([]byte{fill}, seg)
	copy(b, fixture.WALHead(a.t, fixture.Plain))
	_, n, err := pgcontrol.ParseWALFileName(name, seg)
	if err != nil {
		a.t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(b[8:], uint64(pgcontrol.SegmentStart(n, seg)))
	return b
}

// put stores body as the WAL file name and returns its key.
func (a *testArchive) put(name string, body []byte) string {
	a.t.Helper()
	sum := sha256.Sum256(body)
	key := archive.WALKey(name, hex.EncodeToString(sum[:])[:archive.DigestLen], a.enc.Ext())
	if _, err := archive.PutStream(context.Background(), a.s, key, a.enc, func(w io.Writer) error {
		_, err := w.Write(body)
		return err
	}); err != nil {
		a.t.Fatal(err)
	}
	return key
}

// segments archives segments first..last of timeline tli.
func (a *testArchive) segments(tli uint32, first, last uint64) {
	for n := first; n <= last; n++ {
		name := pgcontrol.WALFileName(tli, n, seg)
		a.put(name, a.segment(name, byte(n)))
	}
}

// history archives the history file of timeline tli.
func (a *testArchive) history(tli uint32, lines ...string) {
	a.put(pgcontrol.HistoryFileName(tli), []byte(strings.Join(lines, "\n")+"\n"))
}

func (a *testArchive) walKey(name string) string {
	a.t.Helper()
	o, err := archive.FindWAL(context.Background(), a.s, name)
	if err != nil {
		a.t.Fatal(err)
	}
	return o.Key
}

// backup stores a backup on timeline tli whose WAL runs from segment
// start to stop: two partitions, pg_control.tar, files.json,
// backup_manifest and the sentinel.
func (a *testArchive) backup(tli uint32, start, stop uint64) *archive.Sentinel {
	a.t.Helper()
	ctx := context.Background()
	a.seq++
	startLSN := pgcontrol.SegmentStart(start, seg) + 0x28
	stopLSN := pgcontrol.SegmentStart(stop, seg) + 0x100
	sn := &archive.Sentinel{
		Format: archive.FormatVersion, Timeline: tli,
		StartLSN: startLSN.String(), FinishLSN: stopLSN.String(),
		StartSegment: pgcontrol.WALFileName(tli, start, seg), StartOffset: "00000028",
		StopSegment: pgcontrol.WALFileName(tli, stop, seg), StopOffset: "00000100",
		SystemIdentifier: strconv.FormatUint(a.sysid, 10), PGVersion: 150000, WALSegmentSize: seg,
		Compression: a.enc.Codec.Name(), Encrypted: a.enc.To != nil, Partitions: 2,
		StartTime:  time.Date(2026, 1, 1, 0, a.seq, 0, 0, time.UTC),
		FinishTime: time.Date(2026, 1, 1, 0, a.seq, 30, 0, time.UTC),
	}
	sn.Name = "base_" + sn.StartSegment + "_" + sn.StartOffset
	m := &archive.Manifest{Format: archive.FormatVersion, Name: sn.Name}
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	addTar := func(key string, part int, files map[string][]byte, order []string) {
		if _, err := archive.PutStream(ctx, a.s, key, a.enc, func(w io.Writer) error {
			tw := tarball.NewWriter(w)
			for _, name := range order {
				if files[name] == nil {
					f, err := tw.AddDir(name, 0o700, mtime)
					if err != nil {
						return err
					}
					f.Partition = part
					m.Files = append(m.Files, f)
					continue
				}
				if data := files[name]; a.chunk > 0 && len(data) > a.chunk {
					f := tarball.File{Path: name, Type: tarball.TypeFile, Size: int64(len(data)), Mode: 0o600, ModTime: mtime}
					for off := 0; off < len(data); off += a.chunk {
						p := data[off:min(off+a.chunk, len(data))]
						c, _, err := tw.AddChunk(name, bytes.NewReader(p), int64(off), int64(len(p)), 0o600, mtime)
						if err != nil {
							return err
						}
						c.Partition = part
						f.Chunks = append(f.Chunks, c)
						f.CRC32C = tarball.CombineCRC32C(f.CRC32C, c.CRC32C, c.Size)
					}
					m.Files = append(m.Files, f)
					m.Format = archive.ManifestFormatChunked
					continue
				}
				f, _, err := tw.AddFile(name, bytes.NewReader(files[name]), int64(len(files[name])), 0o600, mtime)
				if err != nil {
					return err
				}
				f.Partition = part
				m.Files = append(m.Files, f)
			}
			return tw.Close()
		}); err != nil {
			a.t.Fatal(err)
		}
	}
	ext := a.enc.Ext()
	addTar(archive.PartitionKey(sn.Name, 1, ext), 1, map[string][]byte{"base": nil, "base/1": nil, "base/1/1259": fixture.HeapPages(1, 8192*4), "PG_VERSION": []byte("15\n")},
		[]string{"PG_VERSION", "base", "base/1", "base/1/1259"})
	addTar(archive.PartitionKey(sn.Name, 2, ext), 2, map[string][]byte{"base/1/2608": fixture.HeapPages(2, 8192*8)}, []string{"base/1/2608"})
	control, err := os.ReadFile("../testdata/pgcontrol/pg15_plain.control")
	if err != nil {
		a.t.Fatal(err)
	}
	label := fmt.Sprintf("START WAL LOCATION: %s (file %s)\nCHECKPOINT LOCATION: %s\nSTART TIMELINE: %d\n", sn.StartLSN, sn.StartSegment, sn.StartLSN, tli)
	sn.ControlKey = archive.ControlKey(sn.Name, ext)
	addTar(sn.ControlKey, archive.ControlPartition, map[string][]byte{"backup_label": []byte(label), archive.ControlFile: control}, []string{"backup_label", archive.ControlFile})
	sn.ManifestKey = archive.ManifestKey(sn.Name, ext)
	if _, err := archive.PutManifest(ctx, a.s, sn.ManifestKey, a.enc, m); err != nil {
		a.t.Fatal(err)
	}
	sn.PGManifestKey = archive.PGManifestKey(sn.Name, ext)
	if _, err := archive.PutStream(ctx, a.s, sn.PGManifestKey, a.enc, func(w io.Writer) error {
		body := "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n{\"Path\": \"PG_VERSION\", \"Size\": 3} ],\n\"WAL-Ranges\": [],\n"
		sum := sha256.Sum256([]byte(body))
		_, err := fmt.Fprintf(w, "%s\"Manifest-Checksum\": \"%s\"}\n", body, hex.EncodeToString(sum[:]))
		return err
	}); err != nil {
		a.t.Fatal(err)
	}
	if _, err := archive.PutJSON(ctx, a.s, archive.SentinelKey(sn.Name), sn); err != nil {
		a.t.Fatal(err)
	}
	return sn
}

// flip changes one byte in the middle of key's stored bytes.
func (a *testArchive) flip(key string) func() {
	a.t.Helper()
	orig := fixture.Object(a.t, a.s, key)
	b := bytes.Clone(orig)
	b[len(b)/2] ^= 0x40
	a.replace(key, b)
	return func() { a.replace(key, orig) }
}

func (a *testArchive) replace(key string, b []byte) {
	a.t.Helper()
	if err := a.s.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		a.t.Fatal(err)
	}
}

// remove deletes key and returns how to put it back.
func (a *testArchive) remove(key string) func() {
	a.t.Helper()
	orig := fixture.Object(a.t, a.s, key)
	if err := a.s.Delete(context.Background(), key); err != nil {
		a.t.Fatal(err)
	}
	return func() { a.replace(key, orig) }
}

var _ storage.Store = (*mem.Store)(nil)
