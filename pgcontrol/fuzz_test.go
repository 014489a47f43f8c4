package pgcontrol

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// fixtures adds every pg_control file and WAL page header in testdata.
func fixtures(f *testing.F, pattern string) {
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "pgcontrol", pattern))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no fixtures %s: %v", pattern, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// A damaged or forged pg_control is an error, never a panic.
func FuzzParseControlFile(f *testing.F) {
	fixtures(f, "*.control")
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseControlFile(b)
	})
}

// Whatever a file named like a segment starts with, reading its page
// header gives facts or an error, never a panic.
func FuzzWALPageHeader(f *testing.F) {
	fixtures(f, "*.walhead")
	f.Fuzz(func(t *testing.T, b []byte) {
		WALSegmentSystemIdentifier(b)
		WALSegmentPGVersion(b)
		WALPageAddress(b)
	})
}

// A name that parses as a segment prints back as the same name.
func FuzzWALFileName(f *testing.F) {
	for _, s := range []string{"000000010000000000000001", "00000002000000A1000000FF", "0000000100000000000000FF", "zzz", "00000001.history"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		// Must not panic on any name; the results are not checked here.
		_ = IsWALFileName(name)
		_ = IsHistoryFileName(name)
		_ = IsBackupHistoryFileName(name)
		_ = IsPartialFileName(name)
		for _, size := range []uint64{1 << 20, 16 << 20, 64 << 20, 1 << 30} {
			tli, seg, err := ParseWALFileName(name, size)
			if err != nil {
				continue
			}
			if back := WALFileName(tli, seg, size); back != name {
				t.Fatalf("%q (segment size %d) parses as timeline %d segment %d, which prints as %q", name, size, tli, seg, back)
			}
		}
	})
}

// An LSN that parses prints back as one that parses to the same value.
func FuzzParseLSN(f *testing.F) {
	for _, s := range []string{"0/0", "0/3000028", "FFFFFFFF/FFFFFFFF", "1/", "/1", "0x1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lsn, err := ParseLSN(s)
		if err != nil {
			return
		}
		again, err := ParseLSN(lsn.String())
		if err != nil || again != lsn {
			t.Fatalf("%q parses as %d, printed %q, which parses as %d (%v)", s, lsn, lsn.String(), again, err)
		}
	})
}

// A damaged history file is an error, never a panic; one that parses has
// increasing timelines.
func FuzzParseHistory(f *testing.F) {
	for _, s := range []string{"1\t0/3000000\tno recovery target specified\n", "1\t0/3000000\tx\n2\t0/5000000\ty\n", "# comment\n\n", "2\t0/1\n1\t0/2\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := ParseHistory(bytes.NewReader(b))
		if err != nil {
			return
		}
		for i := 1; i < len(entries); i++ {
			if entries[i].ParentTLI <= entries[i-1].ParentTLI {
				t.Fatalf("timelines not increasing: %+v", entries)
			}
		}
	})
}
