package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	core "github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/tarball"
)

// hostileEntry is one tar entry of a forged backup.
type hostileEntry struct {
	name, link string // link set: a symlink
	body       string
}

// forgeBackup writes a backup named evil into a's directory by hand: a
// sentinel, a manifest that lists every entry exactly as the tar holds it
// (so only path safety can refuse them), and one uncompressed partition.
func forgeBackup(t *testing.T, a *archive, entries []hostileEntry) {
	t.Helper()
	dir := filepath.Join(a.Path, "backups", "evil")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m := core.Manifest{Format: 1, Name: "evil"}
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// What every base backup has, so the completeness check passes and
	// path safety alone must refuse the hostile entries.
	part := writeForgedTar(t, &m, 1, mtime, append([]hostileEntry{{name: "PG_VERSION", body: "15\n"}}, entries...))
	control := writeForgedTar(t, &m, 0, mtime, []hostileEntry{{name: "backup_label", body: "START WAL LOCATION: 0/2000028\n"}, {name: "global/pg_control", body: "fake"}})
	now := time.Now().UTC()
	sn := core.Sentinel{
		Format: 1, Name: "evil", StartTime: now, FinishTime: now,
		StartLSN: "0/2000028", FinishLSN: "0/2000100", Timeline: 1,
		StartSegment: "000000010000000000000002", StartOffset: "00000028",
		StopSegment: "000000010000000000000002", StopOffset: "00000100",
		SystemIdentifier: "7000000000000000001", PGVersion: 150000, WALSegmentSize: 16 << 20,
		Compression: "none", Partitions: 1, Files: len(entries),
		ManifestKey: "backups/evil/files.json", ControlKey: "backups/evil/pg_control.tar",
	}
	mj, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sj, err := json.Marshal(sn)
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range map[string][]byte{
		filepath.Join(dir, "part_0001.tar"):           part,
		filepath.Join(dir, "pg_control.tar"):          control,
		filepath.Join(dir, "files.json"):              mj,
		filepath.Join(a.Path, "backups", "evil.json"): sj,
		filepath.Join(a.Path, "walnut.json"):          []byte(`{"format": 1, "system_identifier": "7000000000000000001"}`),
	} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := testpg.ChownToServer(a.Path); err != nil {
		t.Fatal(err)
	}
}

// writeForgedTar returns a tar of entries and lists them in m under
// partition n, exactly as the tar holds them.
func writeForgedTar(t *testing.T, m *core.Manifest, n int, mtime time.Time, entries []hostileEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o600, ModTime: mtime, Format: tar.FormatPAX}
		f := tarball.File{Path: e.name, Mode: 0o600, ModTime: mtime, Partition: n}
		if e.link != "" {
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, e.link, 0o777
			f.Type, f.Link, f.Mode = tarball.TypeSymlink, e.link, 0o777
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.body))
			f.Type, f.Size = tarball.TypeFile, int64(len(e.body))
			f.CRC32C = crc32.Checksum([]byte(e.body), crc32.MakeTable(crc32.Castagnoli))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, f)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// Entries that point outside the restore target are refused by path, not
// by the manifest, and nothing lands outside it.
func TestBackupFetchHostileEntries(t *testing.T) {
	cases := []struct {
		name    string
		entries func(dest string) []hostileEntry
		mention string // what the error must name
		targets func(dest string) []string
	}{
		{
			name:    "dotdot",
			entries: func(string) []hostileEntry { return []hostileEntry{{name: "../../evil-dotdot", body: "pwned\n"}} },
			mention: "../../evil-dotdot",
			targets: func(dest string) []string { return []string{filepath.Join(dest, "../../evil-dotdot")} },
		},
		{
			name: "absolute",
			entries: func(dest string) []hostileEntry {
				return []hostileEntry{{name: filepath.Join(filepath.Dir(dest), "evil-absolute"), body: "pwned\n"}}
			},
			mention: "evil-absolute",
			targets: func(dest string) []string { return []string{filepath.Join(filepath.Dir(dest), "evil-absolute")} },
		},
		{
			name:    "inner-dotdot",
			entries: func(string) []hostileEntry { return []hostileEntry{{name: "a/../../evil-inner", body: "pwned\n"}} },
			mention: "a/../../evil-inner",
			targets: func(dest string) []string { return []string{filepath.Join(filepath.Dir(dest), "evil-inner")} },
		},
		{
			name: "symlink-absolute",
			entries: func(dest string) []hostileEntry {
				return []hostileEntry{{name: "evil", link: filepath.Dir(dest)}, {name: "evil/evil-symlink", body: "pwned\n"}}
			},
			mention: `"evil`,
			targets: func(dest string) []string { return []string{filepath.Join(filepath.Dir(dest), "evil-symlink")} },
		},
		{
			name: "symlink-relative",
			entries: func(string) []hostileEntry {
				return []hostileEntry{{name: "evil", link: ".."}, {name: "evil/evil-symlink", body: "pwned\n"}}
			},
			mention: `"evil`,
			targets: func(dest string) []string { return []string{filepath.Join(filepath.Dir(dest), "evil-symlink")} },
		},
		{
			// Each link alone stays inside; b only escapes through a.
			name: "symlink-chain",
			entries: func(string) []hostileEntry {
				return []hostileEntry{{name: "a", link: "."}, {name: "b", link: "a/.."}, {name: "b/evil-chain", body: "pwned\n"}}
			},
			mention: `"b`,
			targets: func(dest string) []string { return []string{filepath.Join(filepath.Dir(dest), "evil-chain")} },
		},
		{
			// A link that resolves outside is refused even if walnut writes
			// nothing through it: the server would, on ALTER SYSTEM.
			name: "symlink-chain-only",
			entries: func(string) []hostileEntry {
				return []hostileEntry{{name: "a", link: "."}, {name: "postgresql.auto.conf", link: "a/../evil-conf"}}
			},
			mention: `"postgresql.auto.conf"`,
			targets: func(string) []string { return nil },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newArchive(t)
			parent := filepath.Join(a.Dir, "restore")
			if err := os.Mkdir(parent, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := testpg.ChownToServer(parent); err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(parent, "dest")
			forgeBackup(t, a, tc.entries(dest))
			beforeParent, beforeTop := dirNames(t, parent), dirNames(t, a.Dir)

			r := run(t, "", env(a, nil), "backup-fetch", dest, "evil", "--no-recovery")
			if r.Code == 0 {
				t.Fatalf("backup-fetch of a hostile backup succeeded: %s", r)
			}
			if !strings.Contains(r.Stderr, tc.mention) || !strings.Contains(r.Stderr, "unsafe") {
				t.Errorf("backup-fetch error does not name the unsafe entry %s:\n%s", tc.mention, r)
			}
			for _, p := range tc.targets(dest) {
				if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("hostile entry wrote %s (err %v)", p, err)
				}
			}
			afterParent := slices.DeleteFunc(dirNames(t, parent), func(n string) bool { return n == "dest" })
			if !slices.Equal(afterParent, beforeParent) {
				t.Errorf("%s: before %v, after %v (besides dest)", parent, beforeParent, afterParent)
			}
			if afterTop := dirNames(t, a.Dir); !slices.Equal(afterTop, beforeTop) {
				t.Errorf("%s: before %v, after %v", a.Dir, beforeTop, afterTop)
			}
			assertEmptyOrAbsent(t, dest)
		})
	}
}
