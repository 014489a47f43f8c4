package tarball

import (
	"archive/tar"
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Check finds every mismatch of one archive in one pass, and reads on
// past a bad file.
func TestCheck(t *testing.T) {
	archive, written, contents := sampleArchive(t)
	const victim = "base/1/1259"

	got, err := Check(bytes.NewReader(archive), manifestOf(written), func(p string, err error) {
		t.Errorf("good archive: %s: %v", p, err)
	})
	if err != nil || len(got) != len(written) {
		t.Fatalf("good archive: %d entries (%v), want %d", len(got), err, len(written))
	}
	for i := range got {
		if got[i].CRC32C != written[i].CRC32C {
			t.Errorf("%s: CRC32C %08x, wrote %08x", got[i].Path, got[i].CRC32C, written[i].CRC32C)
		}
	}

	bad := bytes.Clone(archive)
	bad[bytes.Index(bad, contents[victim])+1000] ^= 0xFF
	m := manifestOf(written)
	delete(m, "global/a/b/c")
	f := m["toplink"]
	f.Link = "elsewhere"
	m["toplink"] = f
	problems := map[string]error{}
	got, err = Check(bytes.NewReader(bad), m, func(p string, err error) { problems[p] = err })
	if err != nil || len(got) != len(written) {
		t.Fatalf("bad archive: %d entries (%v), want all %d read", len(got), err, len(written))
	}
	for _, p := range []string{victim, "global/a/b/c", "toplink"} {
		if !errors.Is(problems[p], ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", p, problems[p])
		}
	}
	if len(problems) != 3 {
		t.Errorf("problems %v, want exactly three", problems)
	}
}

func TestCheckRefusesWhatExtractRefuses(t *testing.T) {
	archive := rawTar(t, reg("../escape", "x"), rawEntry{typ: tar.TypeLink, name: "hard", link: "a"}, reg("ok", "y"))
	problems := map[string]error{}
	got, err := Check(bytes.NewReader(archive), map[string]File{"ok": {Path: "ok", Type: TypeFile, Size: 1, CRC32C: crcOf([]byte("y"))}},
		func(p string, err error) { problems[p] = err })
	if err != nil || len(got) != 1 || got[0].Path != "ok" {
		t.Fatalf("got %+v, %v", got, err)
	}
	for _, p := range []string{"../escape", "hard"} {
		if !errors.Is(problems[p], ErrUnsafe) {
			t.Errorf("%s: %v, want ErrUnsafe", p, problems[p])
		}
	}
}

func TestCheckTruncated(t *testing.T) {
	archive, written, _ := sampleArchive(t)
	_, err := Check(bytes.NewReader(archive[:len(archive)/2]), manifestOf(written), func(string, error) {})
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") && !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("half an archive: %v, want a truncation error", err)
	}
}

// backup-verify checks each chunk of a chunked file in its partition, and
// an entry twice in one object.
func TestCheckChunked(t *testing.T) {
	data := randomBytes(500_000)
	archives, f := chunkedArchives(t, data, 100_000, 2)
	byPart, err := ByPartition([]File{f})
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range archives {
		got, err := Check(bytes.NewReader(a), byPart[i+1], func(p string, err error) { t.Errorf("%s: %v", p, err) })
		if err != nil || len(got) != len(byPart[i+1]) {
			t.Fatalf("partition %d: %d entries, %v", i+1, len(got), err)
		}
	}
	bad := bytes.Clone(data)
	bad[250_000] ^= 1
	damaged, _ := chunkedArchives(t, bad, 100_000, 1)
	var dup bytes.Buffer
	w := NewWriter(&dup)
	for _, c := range []Chunk{f.Chunks[0], f.Chunks[0]} {
		w.AddChunk(f.Path, bytes.NewReader(data[c.Offset:c.Offset+c.Size]), c.Offset, c.Size, 0o600, mtime)
	}
	w.Close()
	whole, _ := ByPartition([]File{chunkedFile(f.Path, data, 100_000)})
	for name, a := range map[string][]byte{"damaged": damaged[0], "twice": dup.Bytes()} {
		var reports []string
		if _, err := Check(bytes.NewReader(a), whole[1], func(p string, err error) { reports = append(reports, p+": "+err.Error()) }); err != nil {
			t.Fatal(err)
		}
		if len(reports) != 1 || !strings.Contains(reports[0], ChunkName(f.Path, f.Chunks[map[string]int{"damaged": 2, "twice": 0}[name]].Offset)) {
			t.Errorf("%s: reports %q", name, reports)
		}
	}
}
