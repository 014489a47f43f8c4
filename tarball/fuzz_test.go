package tarball

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// entryTypes are the tar types the fuzzer picks from.
var entryTypes = []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo}

// FuzzExtract feeds the extractor archives of two entries whose names,
// link targets, types and contents the fuzzer chooses: whatever they are,
// extraction never panics and never writes outside its root. The tar
// stream itself is built with archive/tar, whose own parser Go fuzzes;
// fed raw bytes, the coverage-guided fuzzer crawled at a run a second
// inside it.
func FuzzExtract(f *testing.F) {
	f.Add(uint8(1), "base", "", uint8(0), "base/1", "", []byte("heap page"))
	f.Add(uint8(0), "../escape", "", uint8(2), "ln", "/etc", []byte("x"))
	f.Add(uint8(2), "ln", "..", uint8(0), "ln/escape", "", []byte("x"))
	f.Add(uint8(2), "a", ".", uint8(2), "a/b", "../..", []byte(""))
	f.Add(uint8(3), "hard", "base/1", uint8(4), "fifo", "", []byte(""))
	f.Add(uint8(1), "/abs", "", uint8(0), "a/../../b", "", []byte("x"))
	f.Fuzz(func(t *testing.T, type1 uint8, name1, link1 string, type2 uint8, name2, link2 string, body []byte) {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, e := range []struct {
			typ        uint8
			name, link string
		}{{type1, name1, link1}, {type2, name2, link2}} {
			h := &tar.Header{Typeflag: entryTypes[int(e.typ)%len(entryTypes)], Name: e.name, Linkname: e.link, Mode: 0o600, ModTime: time.Unix(0, 0)}
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len(body))
			}
			if tw.WriteHeader(h) != nil {
				return // archive/tar cannot write it, so no tar holds it
			}
			if h.Size > 0 {
				tw.Write(body)
			}
		}
		tw.Close()

		parent := fuzzDir(t)
		dest := filepath.Join(parent, "dest")
		if err := os.Mkdir(dest, 0o700); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(dest)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		(&Extractor{Root: root}).Extract(&b)

		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "dest" {
			t.Fatalf("extraction wrote beside its root: %v", entries)
		}
		filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if !d.Type().IsRegular() && !d.IsDir() && d.Type()&fs.ModeSymlink == 0 {
				t.Fatalf("extraction made %s, a %v", p, d.Type())
			}
			if d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			target, err := os.Readlink(p)
			if err != nil {
				t.Fatal(err)
			}
			resolved := filepath.Join(filepath.Dir(p), target)
			if filepath.IsAbs(target) || !strings.HasPrefix(resolved+"/", dest+"/") {
				t.Fatalf("symlink %s -> %s leads outside the root", p, target)
			}
			return nil
		})
	})
}

// fuzzDir is a fresh directory on tmpfs when there is one: extraction
// fsyncs the directories it writes, which on a busy disk can take longer
// than a short fuzz run has left.
func fuzzDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "walnut-fuzz-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}
