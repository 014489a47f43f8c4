package archive_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage/mem"
)

func TestEncryptedManifest(t *testing.T) {
	to, kr := fixture.KeyPair(t)
	s := mem.New()
	ctx := context.Background()
	enc := archive.Encoding{Codec: compression.Default(), To: to}
	key := archive.ManifestKey("base_x", enc.Ext())
	m := &archive.Manifest{Format: archive.FormatVersion, Name: "base_x", Tablespaces: []archive.Tablespace{{OID: "16384", Name: "secret_ts", Location: "/srv/ts"}}}
	if _, err := archive.PutManifest(ctx, s, key, enc, m); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(key, "files.json.zst.pgp") {
		t.Fatalf("manifest key %s", key)
	}
	if bytes.Contains(fixture.Object(t, s, key), []byte("secret_ts")) {
		t.Fatal("the manifest is stored in the clear")
	}
	got, err := archive.ReadManifest(ctx, s, key, kr)
	if err != nil || got.Tablespaces[0].Name != "secret_ts" {
		t.Fatalf("read encrypted manifest: %+v, %v", got, err)
	}
	if _, err := archive.ReadManifest(ctx, s, key, nil); !errors.Is(err, archive.ErrNoPrivateKey) {
		t.Fatalf("manifest without a key: %v, want archive.ErrNoPrivateKey", err)
	}
	b := fixture.Object(t, s, key)
	b[len(b)-1] ^= 0x01
	if err := s.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.ReadManifest(ctx, s, key, kr); !errors.Is(err, crypto.ErrIntegrity) {
		t.Fatalf("manifest with an altered MDC: %v, want crypto.ErrIntegrity", err)
	}
}
