package archive

import "testing"

func TestParseWALKey(t *testing.T) {
	cases := []struct {
		key, name, digest, codec string
		enc, bad                 bool
	}{
		{key: "wal/000000010000000A000000FF-0123456789abcdef.zst", name: "000000010000000A000000FF", digest: "0123456789abcdef", codec: "zstd"},
		{key: "wal/00000002.history-0123456789abcdef", name: "00000002.history", digest: "0123456789abcdef", codec: "none"},
		{key: "wal/000000010000000000000002.00000028.backup-0123456789abcdef.lz4.pgp", name: "000000010000000000000002.00000028.backup", digest: "0123456789abcdef", codec: "lz4", enc: true},
		{key: "wal/000000010000000000000002-short.zst", bad: true},
		{key: "backups/x.json", bad: true},
	}
	for _, c := range cases {
		o, err := ParseWALKey(c.key)
		if c.bad {
			if err == nil {
				t.Errorf("%s: want error", c.key)
			}
			continue
		}
		if err != nil || o.Name != c.name || o.Digest != c.digest || o.Codec.Name() != c.codec || o.Encrypted != c.enc {
			t.Errorf("%s: got %+v (%v)", c.key, o, err)
		}
	}
}

func TestBackupNameFromSentinel(t *testing.T) {
	for key, want := range map[string]string{
		"backups/base_000000010000000000000002_00000028.json": "base_000000010000000000000002_00000028",
		"backups/base_x/files.json.zst":                       "",
		"backups/.json":                                       "",
		"wal/x.json":                                          "",
	} {
		if got := BackupNameFromSentinel(key); got != want {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
}
