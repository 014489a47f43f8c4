package archive_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
)

func put(t *testing.T, s storage.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

// WAL-E's sentinel: the start from the name, its offset in decimal; the
// stop from the JSON; tablespaces from the spec. Anything else refused.
func TestWALESentinel(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, json, err string
		start, finish   string
		tablespaces     int
	}{
		{name: "base_000000010000000000000002_00000040",
			json:  `{"wal_segment_backup_stop": "000000010000000000000003", "wal_segment_offset_backup_stop": "00000312", "expanded_size_bytes": 123, "spec": {"base_prefix": "/d/", "tablespaces": ["16384"], "16384": {"loc": "/ts/", "link": "pg_tblspc/16384"}}}`,
			start: "0/2000028", finish: "0/3000138", tablespaces: 1},
		{name: "base_000000010000000000000002_00000040",
			json:  `{"wal_segment_backup_stop": "000000010000000000000002", "wal_segment_offset_backup_stop": "00001000", "expanded_size_bytes": 1}`,
			start: "0/2000028", finish: "0/20003E8"},
		{name: "base_000000010000000000000002_00000040", json: `{"expanded_size_bytes": 1}`, err: "not a finished WAL-E backup"},
		{name: "base_000000010000000000000002_00000040", json: `not json`, err: "not WAL-E's sentinel JSON"},
		{name: "base_000000010000000000000002_00000040", json: `{"wal_segment_backup_stop": "000000010000000000000001", "wal_segment_offset_backup_stop": "00000000"}`, err: "before it starts"},
		{name: "base_000000010000000000000002_00000040", json: `{"wal_segment_backup_stop": "000000010000000000000003", "wal_segment_offset_backup_stop": "0000003A"}`, err: "decimal offset"},
		{name: "base_000000010000000000000002_00000040", json: `{"wal_segment_backup_stop": "000000010000000000000003", "wal_segment_offset_backup_stop": "00000000", "spec": {"tablespaces": ["16384"], "16384": {"loc": "/ts", "link": "../../etc"}}}`, err: "link"},
	}
	for _, c := range cases {
		s := mem.New()
		put(t, s, archive.WALESentinelKey(c.name), []byte(c.json))
		list, err := archive.ListBackups(ctx, s)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want %q", c.json, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		sn := list[0]
		if !sn.IsWALE() || sn.StartLSN != c.start || sn.FinishLSN != c.finish || len(sn.WALETablespaces) != c.tablespaces || sn.Timeline != 1 {
			t.Errorf("%s: %+v", c.json, sn)
		}
		if got, err := archive.ResolveBackup(ctx, s, "LATEST"); err != nil || got.Name != c.name {
			t.Errorf("LATEST: %v, %v", got, err)
		}
		if got, err := archive.ResolveBackup(ctx, s, c.name); err != nil || !got.IsWALE() {
			t.Errorf("by name: %v, %v", got, err)
		}
	}
}

// A prefix holding only WAL-E's directories is an archive; an empty one
// is not.
func TestRequireAcceptsWALE(t *testing.T) {
	ctx := context.Background()
	s := mem.New()
	if err := archive.Require(ctx, s); !errors.Is(err, archive.ErrNotAnArchive) {
		t.Fatalf("empty prefix: %v", err)
	}
	put(t, s, archive.WALEWALKey("000000010000000000000001"), []byte("x"))
	if err := archive.Require(ctx, s); err != nil {
		t.Fatalf("WAL-E prefix: %v", err)
	}
}

// FindWALAny: walnut's object, WAL-E's, both (walnut's, with the twin
// named for the caller to compare), neither.
func TestFindWALAny(t *testing.T) {
	ctx := context.Background()
	s := mem.New()
	name := "000000010000000000000005"
	if _, err := archive.FindWALAny(ctx, s, name); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("none: %v", err)
	}
	put(t, s, archive.WALEWALKey(name), []byte("x"))
	o, err := archive.FindWALAny(ctx, s, name)
	if err != nil || !o.WALE || o.Key != "wal_005/"+name+".lzo" {
		t.Fatalf("WAL-E's: %+v, %v", o, err)
	}
	put(t, s, archive.WALKey(name, "0123456789abcdef", ".zst"), []byte("y"))
	o, err = archive.FindWALAny(ctx, s, name)
	if err != nil || o.WALE || o.Twin != archive.WALEWALKey(name) {
		t.Fatalf("both: %+v, %v", o, err)
	}
}

// OpenDecoded reads WAL-E's lzop objects and refuses what is neither
// lzop nor OpenPGP with a corrupt-stream error naming no guess.
func TestOpenWALEObject(t *testing.T) {
	if _, err := exec.LookPath("lzop"); err != nil {
		testpg.Require(t, "lzop", err)
	}
	ctx := context.Background()
	s := mem.New()
	plain := bytes.Repeat([]byte("WAL-E "), 10000)
	cmd := exec.Command("lzop", "-c")
	cmd.Stdin = bytes.NewReader(plain)
	lz, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	key := archive.WALEWALKey("000000010000000000000001")
	put(t, s, key, lz)
	rc, err := archive.OpenDecoded(ctx, s, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := got.ReadFrom(rc); err != nil || !bytes.Equal(got.Bytes(), plain) {
		t.Fatalf("decoded %d bytes, %v", got.Len(), err)
	}
	rc.Close()
	put(t, s, key, []byte("garbage, not lzop"))
	if _, err := archive.OpenDecoded(ctx, s, key, nil); err == nil || !strings.Contains(err.Error(), "neither lzop nor gpg") {
		t.Fatalf("garbage: %v", err)
	}
}

// LATEST is the newest backup by finish time across both layouts: a
// WAL-E backup's is its sentinel's modification time.
func TestLatestAcrossLayouts(t *testing.T) {
	ctx := context.Background()
	s := mem.New()
	put(t, s, archive.WALESentinelKey("base_000000010000000000000002_00000040"),
		[]byte(`{"wal_segment_backup_stop": "000000010000000000000002", "wal_segment_offset_backup_stop": "00000400"}`))
	for _, c := range []struct {
		offset time.Duration
		want   string
	}{{time.Hour, "base_000000010000000000000005_00000028"}, {-time.Hour, "base_000000010000000000000002_00000040"}} {
		sn := archive.Sentinel{Name: "base_000000010000000000000005_00000028", FinishTime: time.Now().Add(c.offset),
			StartSegment: "000000010000000000000005", StopSegment: "000000010000000000000005", WALSegmentSize: 16 << 20}
		if _, err := archive.PutJSON(ctx, s, archive.SentinelKey(sn.Name), sn); err != nil {
			t.Fatal(err)
		}
		got, err := archive.ResolveBackup(ctx, s, "LATEST")
		if err != nil || got.Name != c.want {
			t.Fatalf("walnut's finished %v from now: LATEST %v, %v; want %s", c.offset, got, err, c.want)
		}
	}
}
