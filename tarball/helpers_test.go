package tarball

import (
	"archive/tar"
	"bytes"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// crcOf is computed independently of the package's table.
func crcOf(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

var mtime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// newDest makes a fresh destination as the only child of a temp directory,
// so a test can prove nothing was written beside it.
func newDest(t *testing.T) (parent, dest string, root *os.Root) {
	t.Helper()
	parent = t.TempDir()
	dest = filepath.Join(parent, "dest")
	if err := os.Mkdir(dest, 0o700); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return parent, dest, root
}

// onlyChild fails unless dir holds exactly one entry, named name.
func onlyChild(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != name {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("%s holds %v, want only %q: something was written outside the destination", dir, names, name)
	}
}

// rawTar builds an archive with archive/tar directly, for entries our
// Writer would refuse to produce.
func rawTar(t *testing.T, entries ...rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: 0o644, ModTime: mtime, Size: int64(len(e.data))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("header %q: %v", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type rawEntry struct {
	typ  byte
	name string
	link string
	data []byte
}

func reg(name, data string) rawEntry {
	return rawEntry{typ: tar.TypeReg, name: name, data: []byte(data)}
}
func symlink(name, target string) rawEntry {
	return rawEntry{typ: tar.TypeSymlink, name: name, link: target}
}
