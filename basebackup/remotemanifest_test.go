package basebackup

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/tarball"
)

// The check reads the manifest format PostgreSQL writes, which
// writePGManifest also writes (pg_verifybackup accepts it in the e2e
// tests): a faithful stream passes, and each kind of loss is named.
func TestCheckServerManifest(t *testing.T) {
	files := []tarball.File{
		{Path: "PG_VERSION", Type: tarball.TypeFile, Size: 3, CRC32C: 0x1234, ModTime: time.Now()},
		{Path: "base/1/1259", Type: tarball.TypeFile, Size: 8192, CRC32C: 0xdeadbeef, ModTime: time.Now()},
		{Path: "base", Type: tarball.TypeDir},
	}
	var b bytes.Buffer
	if err := writePGManifest(&b, files, 1, "0/2000028", "0/2000100"); err != nil {
		t.Fatal(err)
	}
	manifest := b.Bytes()
	got := func() map[string]arrived {
		return map[string]arrived{"PG_VERSION": {3, 0x1234}, "base/1/1259": {8192, 0xdeadbeef}}
	}
	if err := checkServerManifest(manifest, got()); err != nil {
		t.Fatalf("faithful stream: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(map[string]arrived)
		want string
	}{
		{"missing", func(g map[string]arrived) { delete(g, "PG_VERSION") }, "PG_VERSION: listed, not received"},
		{"extra", func(g map[string]arrived) { g["stray"] = arrived{1, 1} }, "stray: received, not listed"},
		{"size", func(g map[string]arrived) { g["base/1/1259"] = arrived{8191, 0xdeadbeef} }, "received 8191 bytes, listed 8192"},
		{"crc", func(g map[string]arrived) { g["base/1/1259"] = arrived{8192, 0xdeadbeee} }, "base/1/1259: CRC32C"},
	} {
		g := got()
		c.edit(g)
		if err := checkServerManifest(manifest, g); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming %q", c.name, err, c.want)
		}
	}
	bad := bytes.Replace(manifest, []byte(`"Size":3`), []byte(`"Size":4`), 1)
	if err := checkServerManifest(bad, got()); err == nil || !strings.Contains(err.Error(), "Manifest-Checksum") {
		t.Errorf("edited manifest: got %v, want a Manifest-Checksum error", err)
	}
}
