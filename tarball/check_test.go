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
