package tarball

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleArchive writes a small data-directory-like partition and returns
// the tar, the entries as the Writer reported them, and each file's content.
func sampleArchive(t *testing.T) ([]byte, []File, map[string][]byte) {
	t.Helper()
	longName := "base/1/" + strings.Repeat("n", 150) // beyond ustar's 100 bytes
	contents := map[string][]byte{
		"PG_VERSION":    []byte("15\n"),
		"base/1/1259":   bytes.Repeat([]byte{0xAB, 0, 0, 1}, 3*copyBufSize/4+100),
		"base/1/empty":  {},
		"global/a/b/c":  []byte("deep"),
		longName:        []byte("long"),
		"pg_wal/.keep2": []byte("x"),
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	var files []File
	add := func(f File, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	add(w.AddDir("base", 0o700, mtime))
	add(w.AddDir("base/1", 0o750, mtime))
	add(w.AddDir("pg_wal", 0o700, mtime))
	add(w.AddDir("empty_dir", 0o700, mtime))
	for _, name := range []string{"PG_VERSION", "base/1/1259", "base/1/empty", "global/a/b/c", longName, "pg_wal/.keep2"} {
		f, shrunk, err := w.AddFile(name, bytes.NewReader(contents[name]), int64(len(contents[name])), 0o600, mtime)
		if shrunk {
			t.Fatalf("%s reported shrunk", name)
		}
		add(f, err)
	}
	add(w.AddSymlink("base/1/link", "1259", mtime))
	add(w.AddSymlink("toplink", "base/1", mtime))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), files, contents
}

func manifestOf(files []File) map[string]File {
	m := map[string]File{}
	for _, f := range files {
		m[f.Path] = f
	}
	return m
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		expect bool
		fsync  bool
	}{{"plain", false, false}, {"expect", true, false}, {"fsync", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			archive, written, contents := sampleArchive(t)
			parent, dest, root := newDest(t)
			x := &Extractor{Root: root, Fsync: tc.fsync}
			if tc.expect {
				x.Expect = manifestOf(written)
			}
			got, err := x.Extract(bytes.NewReader(archive))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(written) {
				t.Fatalf("extracted %d entries, wrote %d", len(got), len(written))
			}
			for i := range got {
				g, w := got[i], written[i]
				if g.Path != w.Path || g.Type != w.Type || g.Size != w.Size || g.Mode != w.Mode ||
					!g.ModTime.Equal(w.ModTime) || g.CRC32C != w.CRC32C || g.Link != w.Link {
					t.Errorf("entry %d: extracted %+v, wrote %+v", i, g, w)
				}
			}
			for name, data := range contents {
				p := filepath.Join(dest, filepath.FromSlash(name))
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, data) {
					t.Errorf("%s: %d bytes on disk, want %d", name, len(b), len(data))
				}
				st, _ := os.Stat(p)
				if st.Mode().Perm() != 0o600 || !st.ModTime().Equal(mtime) {
					t.Errorf("%s: mode %v mtime %v, want 0600 %v", name, st.Mode(), st.ModTime(), mtime)
				}
			}
			st, err := os.Stat(filepath.Join(dest, "base/1"))
			if err != nil || st.Mode().Perm() != 0o750 || !st.ModTime().Equal(mtime) {
				t.Errorf("base/1: %v %v (%v), want 0750 %v", st.Mode(), st.ModTime(), err, mtime)
			}
			if st, err := os.Stat(filepath.Join(dest, "empty_dir")); err != nil || !st.IsDir() {
				t.Errorf("empty_dir: %v", err)
			}
			if l, err := os.Readlink(filepath.Join(dest, "base/1/link")); err != nil || l != "1259" {
				t.Errorf("base/1/link -> %q (%v), want 1259", l, err)
			}
			if b, err := os.ReadFile(filepath.Join(dest, "toplink/1259")); err != nil || !bytes.Equal(b, contents["base/1/1259"]) {
				t.Errorf("reading through toplink: %v", err)
			}
			onlyChild(t, parent, "dest")
		})
	}
}

// The shrink case end to end: the restored file is the padded one and its
// CRC is what the writer reported.
func TestRoundTripShrunkFile(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	f, shrunk, err := w.AddFile("f", strings.NewReader("abc"), 100, 0o600, mtime)
	if err != nil || !shrunk {
		t.Fatalf("shrunk=%v err=%v", shrunk, err)
	}
	w.Close()
	_, dest, root := newDest(t)
	got, err := (&Extractor{Root: root, Expect: map[string]File{"f": f}}).Extract(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("abc"), make([]byte, 97)...)
	b, _ := os.ReadFile(filepath.Join(dest, "f"))
	if !bytes.Equal(b, want) || got[0].CRC32C != crcOf(want) {
		t.Fatalf("restored %q crc %08x, want abc+97 zeros crc %08x", b, got[0].CRC32C, crcOf(want))
	}
}

func TestExpectMismatch(t *testing.T) {
	archive, written, contents := sampleArchive(t)
	const victim = "base/1/1259"

	t.Run("flipped byte", func(t *testing.T) {
		bad := bytes.Clone(archive)
		i := bytes.Index(bad, contents[victim])
		if i < 0 {
			t.Fatal("content not found in archive")
		}
		bad[i+1000] ^= 0xFF
		_, dest, root := newDest(t)
		_, err := (&Extractor{Root: root, Expect: manifestOf(written)}).Extract(bytes.NewReader(bad))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("got %v, want a corrupt error naming %s", err, victim)
		}
		if _, err := os.Lstat(filepath.Join(dest, victim)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("corrupt file left behind: %v", err)
		}
	})

	cases := []struct {
		name   string
		change func(m map[string]File)
		path   string
	}{
		{"size", func(m map[string]File) { f := m[victim]; f.Size++; m[victim] = f }, victim},
		{"crc", func(m map[string]File) { f := m[victim]; f.CRC32C++; m[victim] = f }, victim},
		{"not listed", func(m map[string]File) { delete(m, "global/a/b/c") }, "global/a/b/c"},
		{"dir not listed", func(m map[string]File) { delete(m, "pg_wal") }, "pg_wal"},
		{"type", func(m map[string]File) { f := m["toplink"]; f.Type = TypeDir; m["toplink"] = f }, "toplink"},
		{"link", func(m map[string]File) { f := m["toplink"]; f.Link = "elsewhere"; m["toplink"] = f }, "toplink"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := manifestOf(written)
			tc.change(m)
			_, dest, root := newDest(t)
			_, err := (&Extractor{Root: root, Expect: m}).Extract(bytes.NewReader(archive))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("got %v, want ErrCorrupt naming %s", err, tc.path)
			}
			if _, err := os.Lstat(filepath.Join(dest, tc.path)); tc.path == victim && !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("mismatched file left behind: %v", err)
			}
		})
	}
}

func TestHostileArchives(t *testing.T) {
	dev := rawEntry{typ: tar.TypeChar, name: "dev"}
	fifo := rawEntry{typ: tar.TypeFifo, name: "fifo"}
	hard := rawEntry{typ: tar.TypeLink, name: "hard", link: "a"}
	cases := []struct {
		name    string
		entries func(parent string) []rawEntry
		blame   string // the entry the error must name; "" for the last one
	}{
		{"dotdot", func(string) []rawEntry { return []rawEntry{reg("../../x", "pwned")} }, "../../x"},
		{"dotdot one", func(string) []rawEntry { return []rawEntry{reg("../x", "pwned")} }, "../x"},
		{"absolute", func(string) []rawEntry { return []rawEntry{reg("/etc/x", "pwned")} }, "/etc/x"},
		{"absolute parent", func(p string) []rawEntry { return []rawEntry{reg(filepath.Join(p, "x"), "pwned")} }, ""},
		{"inner dotdot", func(string) []rawEntry { return []rawEntry{reg("a/../../x", "pwned")} }, "a/../../x"},
		{"symlink absolute", func(p string) []rawEntry {
			return []rawEntry{symlink("evil", p), reg("evil/x", "pwned")}
		}, "evil"},
		{"symlink tmp", func(string) []rawEntry {
			return []rawEntry{symlink("evil", "/tmp"), reg("evil/x", "pwned")}
		}, "evil"},
		{"symlink up", func(string) []rawEntry {
			return []rawEntry{symlink("evil", "../.."), reg("evil/x", "pwned")}
		}, "evil"},
		{"symlink up from subdir", func(string) []rawEntry {
			return []rawEntry{symlink("d/evil", "../../x")}
		}, "d/evil"},
		// Each link is lexically inside, but d/up resolves to the root, so
		// "esc" would really be its parent: any ".." in a target is refused.
		{"symlink chain", func(string) []rawEntry {
			return []rawEntry{symlink("d/up", ".."), symlink("esc", "d/up/.."), reg("esc/x", "pwned")}
		}, "d/up"},
		{"symlink chain through a dot link", func(string) []rawEntry {
			return []rawEntry{symlink("a", "."), symlink("conf", "a/../x")}
		}, "conf"},
		{"hard link", func(string) []rawEntry { return []rawEntry{reg("a", "x"), hard} }, "hard"},
		{"char device", func(string) []rawEntry { return []rawEntry{dev} }, "dev"},
		{"fifo", func(string) []rawEntry { return []rawEntry{fifo} }, "fifo"},
		{"file over symlink", func(string) []rawEntry {
			return []rawEntry{symlink("f", "target"), reg("f", "pwned")}
		}, "f"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent, dest, root := newDest(t)
			entries := tc.entries(parent)
			archive := rawTar(t, entries...)
			if tc.blame == "" {
				tc.blame = entries[len(entries)-1].name
			}
			_, err := (&Extractor{Root: root}).Extract(bytes.NewReader(archive))
			if err == nil {
				t.Fatal("hostile archive extracted without error")
			}
			t.Logf("refused: %v", err)
			if !strings.Contains(err.Error(), `"`+tc.blame+`"`) {
				t.Errorf("error %q does not name entry %q", err, tc.blame)
			}
			if tc.name != "file over symlink" && !errors.Is(err, ErrUnsafe) {
				t.Errorf("error %q is not ErrUnsafe", err)
			}
			onlyChild(t, parent, "dest")
			filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Name() == "x" {
					t.Errorf("hostile file written at %s", p)
				}
				return nil
			})
			if _, err := os.Lstat("/tmp/x"); err == nil && tc.name == "symlink tmp" {
				b, _ := os.ReadFile("/tmp/x")
				if string(b) == "pwned" {
					t.Error("/tmp/x written through a symlink")
				}
			}
		})
	}
}

// Symlinks with relative targets free of ".." are fine.
func TestSymlinkInsideAllowed(t *testing.T) {
	_, _, root := newDest(t)
	archive := rawTar(t, reg("a/f", "data"), symlink("b/l", "../a/f"), symlink("self", "."))
	if _, err := (&Extractor{Root: root}).Extract(bytes.NewReader(archive)); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("symlink with \"..\": %v, want ErrUnsafe", err)
	}
	_, dest, root2 := newDest(t)
	archive = rawTar(t, reg("a/f", "data"), symlink("b/l", "f"), symlink("a/l", "f"), symlink("self", "."))
	if _, err := (&Extractor{Root: root2}).Extract(bytes.NewReader(archive)); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "a/l")); err != nil || string(b) != "data" {
		t.Fatalf("a/l: %q %v", b, err)
	}
}

func TestExistingFileRefused(t *testing.T) {
	_, dest, root := newDest(t)
	os.WriteFile(filepath.Join(dest, "f"), []byte("keep"), 0o600)
	_, err := (&Extractor{Root: root}).Extract(bytes.NewReader(rawTar(t, reg("f", "new"))))
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), `"f"`) {
		t.Fatalf("got %v, want ErrExist naming f", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "f")); string(b) != "keep" {
		t.Fatalf("existing file overwritten: %q", b)
	}
}

func TestTruncatedArchive(t *testing.T) {
	archive, _, contents := sampleArchive(t)
	t.Run("no trailer", func(t *testing.T) {
		_, _, root := newDest(t)
		// Writer ends with the two zero blocks of the trailer.
		_, err := (&Extractor{Root: root}).Extract(bytes.NewReader(archive[:len(archive)-1024]))
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("got %v, want truncation error", err)
		}
	})
	t.Run("one trailer block", func(t *testing.T) {
		_, _, root := newDest(t)
		_, err := (&Extractor{Root: root}).Extract(bytes.NewReader(archive[:len(archive)-512]))
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("got %v, want truncation error", err)
		}
	})
	t.Run("mid file", func(t *testing.T) {
		_, dest, root := newDest(t)
		i := bytes.Index(archive, contents["base/1/1259"])
		_, err := (&Extractor{Root: root}).Extract(bytes.NewReader(archive[:i+5000]))
		if err == nil || !strings.Contains(err.Error(), "base/1/1259") {
			t.Fatalf("got %v, want error naming base/1/1259", err)
		}
		if _, err := os.Lstat(filepath.Join(dest, "base/1/1259")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("partial file left behind: %v", err)
		}
	})
}

// A decompressor verifies its checksum only at its end, so Extract must
// read past the tar trailer to the end of the stream and report errors there.
func TestReadsToEnd(t *testing.T) {
	archive, _, _ := sampleArchive(t)
	_, _, root := newDest(t)
	boom := errors.New("checksum mismatch at end of stream")
	r := io.MultiReader(bytes.NewReader(archive), bytes.NewReader(make([]byte, 10240)), errReader{boom})
	if _, err := (&Extractor{Root: root}).Extract(r); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the error from the end of the stream", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestMounts(t *testing.T) {
	const ts = "pg_tblspc/16384"
	var buf bytes.Buffer
	w := NewWriter(&buf)
	var files []File
	add := func(f File, err error) {
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	add(w.AddDir("pg_tblspc", 0o700, mtime))
	add(w.AddDir(ts, 0o700, mtime))
	add(w.AddDir(ts+"/PG_15_202209061/5", 0o700, mtime))
	f, _, err := w.AddFile(ts+"/PG_15_202209061/5/16385", strings.NewReader("tablespace data"), 15, 0o600, mtime)
	add(f, err)
	f, _, err = w.AddFile("pg_tblspc/99/x", strings.NewReader("other"), 5, 0o600, mtime)
	add(f, err)
	f, _, err = w.AddFile("base/1/1", strings.NewReader("main"), 4, 0o600, mtime)
	add(f, err)
	w.Close()

	_, dest, root := newDest(t)
	_, tsDest, tsRoot := newDest(t)
	_, wideDest, wideRoot := newDest(t)
	x := &Extractor{
		Root:   root,
		Mounts: map[string]*os.Root{ts + "/": tsRoot, "pg_tblspc/99": wideRoot, "unused/": wideRoot},
		Expect: manifestOf(files),
		Fsync:  true,
	}
	if _, err := x.Extract(&buf); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, rel, want string }{
		{tsDest, "PG_15_202209061/5/16385", "tablespace data"},
		{wideDest, "x", "other"},
		{dest, "base/1/1", "main"},
	} {
		if b, err := os.ReadFile(filepath.Join(c.dir, c.rel)); err != nil || string(b) != c.want {
			t.Errorf("%s in %s: %q %v, want %q", c.rel, c.dir, b, err, c.want)
		}
	}
	// The default root gets pg_tblspc itself but nothing under the mount.
	ents, _ := os.ReadDir(filepath.Join(dest, "pg_tblspc"))
	if len(ents) != 0 {
		t.Errorf("default root's pg_tblspc holds %d entries, want none", len(ents))
	}

	// A mount root cannot be replaced by a symlink entry.
	_, _, root2 := newDest(t)
	_, _, ts2 := newDest(t)
	x = &Extractor{Root: root2, Mounts: map[string]*os.Root{ts + "/": ts2}}
	if _, err := x.Extract(bytes.NewReader(rawTar(t, symlink(ts, "../x")))); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("symlink over a mount root: got %v, want ErrUnsafe", err)
	}
}

func TestMountLongestPrefixWins(t *testing.T) {
	_, outerDest, outer := newDest(t)
	_, innerDest, inner := newDest(t)
	_, _, root := newDest(t)
	x := &Extractor{Root: root, Mounts: map[string]*os.Root{"pg_tblspc/": outer, "pg_tblspc/16384/": inner}}
	if _, err := x.Extract(bytes.NewReader(rawTar(t, reg("pg_tblspc/16384/f", "in"), reg("pg_tblspc/1/f", "out")))); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(innerDest, "f")); string(b) != "in" {
		t.Errorf("inner mount has %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(outerDest, "1/f")); string(b) != "out" {
		t.Errorf("outer mount has %q", b)
	}
}

// A directory mode without owner write would block writing its entries, so
// it is set once the archive is done.
func TestReadOnlyDirModeSetAtEnd(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.AddDir("ro", 0o500, mtime)
	w.AddFile("ro/f", strings.NewReader("x"), 1, 0o400, mtime)
	w.Close()
	_, dest, root := newDest(t)
	if _, err := (&Extractor{Root: root}).Extract(&buf); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dest, "ro"))
	if err != nil || st.Mode().Perm() != 0o500 {
		t.Fatalf("ro: %v %v, want 0500", st.Mode(), err)
	}
}

// Setuid and friends are dropped: a restore must not hand out privileges.
func TestSpecialModeBitsDropped(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "s", Mode: 0o4755, Size: 1, ModTime: mtime})
	tw.Write([]byte("x"))
	tw.Close()
	_, dest, root := newDest(t)
	got, err := (&Extractor{Root: root}).Extract(&buf)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dest, "s"))
	if st.Mode()&fs.ModeSetuid != 0 || got[0].Mode != 0o755 {
		t.Fatalf("mode on disk %v, reported %v; want 0755 without setuid", st.Mode(), got[0].Mode)
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "a", want: "a"},
		{in: "a/b/", want: "a/b"},
		{in: "./a//b", want: "a/b"},
		{in: "./", want: "."},
		{in: "a/./b", want: "a/b"},
		{in: "..a/b..", want: "..a/b.."},
		{in: "", bad: true},
		{in: "/a", bad: true},
		{in: "//a", bad: true},
		{in: "..", bad: true},
		{in: "../a", bad: true},
		{in: "a/..", bad: true},
		{in: "a/../b", bad: true},
		{in: "a/b/../../..", bad: true},
		{in: "a\x00b", bad: true},
	}
	for _, tt := range tests {
		got, err := cleanName(tt.in)
		if tt.bad {
			if !errors.Is(err, ErrUnsafe) {
				t.Errorf("cleanName(%q) = %q, %v; want ErrUnsafe", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// Restore extracts partitions in parallel with one Extractor; partitions
// share directories.
func TestConcurrentPartitions(t *testing.T) {
	var archives [4][]byte
	manifest := map[string]File{}
	for p := range archives {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		d, err := w.AddDir("base/1", 0o700, mtime)
		if err != nil {
			t.Fatal(err)
		}
		manifest[d.Path] = d
		for i := range 20 {
			name := "base/1/" + string(rune('a'+p)) + string(rune('a'+i))
			f, _, err := w.AddFile(name, strings.NewReader(name), int64(len(name)), 0o600, mtime)
			if err != nil {
				t.Fatal(err)
			}
			manifest[f.Path] = f
		}
		w.Close()
		archives[p] = buf.Bytes()
	}
	_, dest, root := newDest(t)
	x := &Extractor{Root: root, Expect: manifest, Fsync: true}
	errs := make(chan error, len(archives))
	for _, a := range archives {
		go func() {
			_, err := x.Extract(bytes.NewReader(a))
			errs <- err
		}()
	}
	for range archives {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(dest, "base/1"))
	if err != nil || len(ents) != 80 {
		t.Fatalf("base/1 holds %d entries (%v), want 80", len(ents), err)
	}
}
