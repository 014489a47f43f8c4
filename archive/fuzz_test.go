package archive

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
)

// put stores b under key in a new memory store.
func put(t *testing.T, key string, b []byte) storage.Store {
	s := mem.New()
	if err := s.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	return s
}

// Sentinels, manifests and walnut.json come from the archive, which an
// attacker or a broken disk may have written: reading them gives the
// object or an error, never a panic.
func FuzzReadSentinel(f *testing.F) {
	f.Add([]byte(`{"format": 1, "name": "b", "start_lsn": "0/2000028", "wal_segment_size": 16777216}`))
	f.Add([]byte(`{"name": "other"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sn, err := ReadSentinel(context.Background(), put(t, SentinelKey("b"), b), "b")
		if err == nil && sn.Name != "b" {
			t.Fatalf("sentinel of b read as %q", sn.Name)
		}
	})
}

func FuzzReadManifest(f *testing.F) {
	f.Add([]byte(`{"format": 1, "name": "b", "files": [{"path": "PG_VERSION", "type": "file", "size": 3}]}` + "\n"))
	f.Add([]byte(`{"files": null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ReadManifest(context.Background(), put(t, ManifestKey("b", ""), b), ManifestKey("b", ""), nil)
	})
}

func FuzzReadIdentity(f *testing.F) {
	f.Add([]byte(`{"format": 1, "system_identifier": "7000000000000000001", "pg_version": 15, "wal_segment_size": 16777216}`))
	f.Add([]byte(`{"format": 99}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ReadIdentity(context.Background(), put(t, IdentityKey, b))
		if err == nil && id.Format > FormatVersion {
			t.Fatalf("format %d accepted", id.Format)
		}
	})
}

// A stored object that was cut short or had a byte changed decodes to an
// error, or to exactly what was stored: never to other bytes without an
// error, and never a panic. For every codec, and encrypted.
func FuzzDecode(f *testing.F) {
	to, kr := fixture.KeyPair(f)
	plain := fixture.HeapPages(1, 64<<10)
	type variant struct {
		key  string
		data []byte
	}
	var variants []variant
	for _, name := range compression.Names() {
		if name == "none" {
			continue // no checksum to catch a change: the WAL digest and manifest CRCs do
		}
		c, err := compression.Parse(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range []Encoding{{Codec: c}, {Codec: c, To: to}} {
			var b bytes.Buffer
			if err := Encode(&b, e, func(w io.Writer) error { _, err := w.Write(plain); return err }); err != nil {
				f.Fatal(err)
			}
			variants = append(variants, variant{"wal/x-0123456789abcdef" + e.Ext(), b.Bytes()})
		}
	}
	f.Add(uint8(0), uint32(0), uint8(0), uint32(0))
	f.Add(uint8(1), uint32(100), uint8(0xff), uint32(0))
	f.Add(uint8(2), uint32(0), uint8(0), uint32(10))
	f.Fuzz(func(t *testing.T, which uint8, at uint32, flip uint8, cut uint32) {
		v := variants[int(which)%len(variants)]
		b := append([]byte(nil), v.data...)
		if len(b) > 0 {
			b[int(at)%len(b)] ^= flip
		}
		b = b[:len(b)-int(cut)%(len(b)+1)]
		changed := !bytes.Equal(b, v.data)
		rc, err := OpenDecoded(context.Background(), put(t, v.key, b), v.key, kr)
		if err != nil {
			return
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err != nil {
			if !changed {
				t.Fatalf("%s: the object as stored fails: %v", v.key, err)
			}
			return
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("%s with byte %d ^ %#x and %d cut: %d bytes decoded without an error, not what was stored", v.key, int(at)%len(v.data), flip, int(cut)%(len(v.data)+1), len(got))
		}
	})
}
