package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/pgcontrol"
)

func verifyWAL(t *testing.T, a *testArchive, kr *crypto.Keyring, timeline uint32) *WALReport {
	t.Helper()
	rep, err := WAL(context.Background(), WALOptions{Store: a.s, Keyring: kr, Timeline: timeline, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func name(tli uint32, n uint64) string { return pgcontrol.WALFileName(tli, n, seg) }

// reachOf returns what the report says of backup n (0: oldest).
func reachOf(t *testing.T, rep *WALReport, n int) Reach {
	t.Helper()
	if len(rep.Backups) <= n {
		t.Fatalf("report has %d backups", len(rep.Backups))
	}
	return rep.Backups[n]
}

func problemsText(rep *WALReport) string {
	var b strings.Builder
	for _, p := range rep.Problems {
		fmt.Fprintln(&b, p)
	}
	return b.String()
}

func TestWALNoGaps(t *testing.T) {
	a := newTestArchive(t, nil)
	a.segments(1, 1, 6) // segment 1 is older than the backup: not needed, not checked
	a.backup(1, 2, 3)
	rep := verifyWAL(t, a, nil, 0)
	if len(rep.Problems) != 0 {
		t.Fatalf("problems:\n%s", problemsText(rep))
	}
	r := reachOf(t, rep, 0)
	if !r.Restorable || r.LastSegment != name(1, 6) || r.To != "0/7000000" || r.Follows != 1 {
		t.Errorf("reach %+v, want restorable to the end of %s", r, name(1, 6))
	}
	if rep.First != name(1, 2) || rep.Newest != name(1, 6) || rep.Segments != 5 || rep.Timeline != 1 {
		t.Errorf("report %+v", rep)
	}
}

// A deleted segment is named, once however many backups need it; every
// backup before it stops there, a backup after it is unaffected.
func TestWALGap(t *testing.T) {
	a := newTestArchive(t, nil)
	a.segments(1, 2, 9)
	a.backup(1, 2, 3)
	a.backup(1, 7, 7)
	a.remove(a.walKey(name(1, 5)))
	a.remove(a.walKey(name(1, 6)))
	rep := verifyWAL(t, a, nil, 0)
	if len(rep.Problems) != 1 || rep.Problems[0].Object != name(1, 5) || !strings.Contains(rep.Problems[0].Problem, "2 segments") {
		t.Fatalf("problems:\n%s\nwant one gap from %s", problemsText(rep), name(1, 5))
	}
	if !slices.Equal(rep.Missing, []string{name(1, 5), name(1, 6)}) {
		t.Errorf("missing %v", rep.Missing)
	}
	if r := reachOf(t, rep, 0); !r.Restorable || r.LastSegment != name(1, 4) {
		t.Errorf("oldest backup: %+v, want restorable up to %s", r, name(1, 4))
	}
	if r := reachOf(t, rep, 1); !r.Restorable || r.LastSegment != name(1, 9) {
		t.Errorf("newest backup: %+v, want restorable to %s", r, name(1, 9))
	}
}

// A segment missing from a backup's own range makes it unrestorable even
// when nothing after it was archived.
func TestWALBackupRangeMissing(t *testing.T) {
	a := newTestArchive(t, nil)
	a.segments(1, 2, 2)
	a.backup(1, 2, 3)
	rep := verifyWAL(t, a, nil, 0)
	if len(rep.Problems) != 1 || rep.Problems[0].Object != name(1, 3) {
		t.Fatalf("problems:\n%s\nwant %s missing", problemsText(rep), name(1, 3))
	}
	if r := reachOf(t, rep, 0); r.Restorable {
		t.Errorf("reach %+v, want not restorable", r)
	}
}

func TestWALDuplicate(t *testing.T) {
	a := newTestArchive(t, nil)
	a.segments(1, 2, 5)
	a.backup(1, 2, 3)
	a.put(name(1, 4), a.segment(name(1, 4), 0xEE)) // other content under an archived name
	rep := verifyWAL(t, a, nil, 0)
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Problem, "different digests") {
		t.Fatalf("problems:\n%s\nwant one name archived twice", problemsText(rep))
	}
	if r := reachOf(t, rep, 0); r.LastSegment != name(1, 3) {
		t.Errorf("reach %+v: wal-fetch refuses %s, so recovery stops before it", r, name(1, 4))
	}
}

// After a promotion at segment 6 the path changes timeline: timeline 1
// up to segment 5, timeline 2 from 6. Timeline 1's own segment 6 (the
// old primary went on) is not on the path.
func TestWALFollowsTimelines(t *testing.T) {
	a := newTestArchive(t, nil)
	a.segments(1, 2, 7)
	a.backup(1, 2, 3)
	a.history(2, "1\t0/6000100\tno recovery target specified")
	a.segments(2, 6, 8)
	rep := verifyWAL(t, a, nil, 0)
	if len(rep.Problems) != 0 {
		t.Fatalf("problems:\n%s", problemsText(rep))
	}
	if r := reachOf(t, rep, 0); !r.Restorable || r.Follows != 2 || r.LastSegment != name(2, 8) {
		t.Errorf("reach %+v, want restorable along timeline 2 to %s", r, name(2, 8))
	}
	if len(rep.Path) != 2 || rep.Path[1] != (Span{Timeline: 2, From: name(2, 6)}) {
		t.Errorf("path %+v", rep.Path)
	}

	// A gap on the old timeline before the switch is on the path.
	a.remove(a.walKey(name(1, 5)))
	rep = verifyWAL(t, a, nil, 0)
	if len(rep.Problems) != 1 || rep.Problems[0].Object != name(1, 5) {
		t.Fatalf("problems:\n%s\nwant %s", problemsText(rep), name(1, 5))
	}
	// Following timeline 1 instead (--timeline 1): it has segment 6 and 7.
	rep = verifyWAL(t, a, nil, 1)
	if r := reachOf(t, rep, 0); r.Follows != 1 || r.LastSegment != name(1, 4) {
		t.Errorf("--timeline 1: %+v", r)
	}
}

// A timeline whose history file is missing is never reached: PostgreSQL
// looks for history files one by one.
func TestWALMissingHistory(t *testing.T) {
	a := newTestArchive(t, nil)
	a.segments(1, 2, 5)
	a.backup(1, 2, 3)
	a.segments(2, 5, 6)
	rep := verifyWAL(t, a, nil, 0)
	if len(rep.Problems) != 1 || rep.Problems[0].Object != "00000002.history" || !slices.Contains(rep.Missing, "00000002.history") {
		t.Fatalf("problems:\n%s\nwant 00000002.history missing", problemsText(rep))
	}
	a.put("00000002.history", []byte("not a history file\n"))
	rep = verifyWAL(t, a, nil, 0)
	if !strings.Contains(problemsText(rep), "unreadable history file") {
		t.Fatalf("problems:\n%s\nwant 00000002.history unreadable", problemsText(rep))
	}
}

// A backup taken after the newest timeline branched off cannot follow
// it; it is restorable on its own timeline, with the advice to say so.
func TestWALBranchBeforeBackup(t *testing.T) {
	a := newTestArchive(t, nil)
	a.segments(1, 2, 9)
	a.backup(1, 7, 8)
	a.history(2, "1\t0/4000000\tbranched early")
	a.segments(2, 4, 5)
	rep := verifyWAL(t, a, nil, 0)
	r := reachOf(t, rep, 0)
	if !r.Restorable || r.Follows != 1 || r.LastSegment != name(1, 9) || !strings.Contains(r.Note, "--recovery-target-timeline current") {
		t.Fatalf("reach %+v", r)
	}
}

func TestWALEncryptedHistoryWithoutKey(t *testing.T) {
	to, kr := fixture.KeyPair(t)
	a := newTestArchive(t, to)
	a.segments(1, 2, 5)
	a.backup(1, 2, 3)
	a.history(2, "1\t0/5000000\tpromoted")
	a.segments(2, 5, 5)
	if rep := verifyWAL(t, a, kr, 0); len(rep.Problems) != 0 {
		t.Fatalf("with the key:\n%s", problemsText(rep))
	}
	rep := verifyWAL(t, a, nil, 0)
	if !strings.Contains(problemsText(rep), "no private key") {
		t.Fatalf("without the key:\n%s\nwant the history file reported unreadable", problemsText(rep))
	}
}

func TestPushCandidates(t *testing.T) {
	a := newTestArchive(t, nil)
	walDir, names := fixture.PGWAL(t, 6, nil) // segments 1 to 6, marked ready
	pgdata := filepath.Dir(walDir)
	for i, n := range names {
		if i != 2 && i != 5 { // 3 is a gap, 6 never archived
			body, err := os.ReadFile(filepath.Join(walDir, n))
			if err != nil {
				t.Fatal(err)
			}
			a.put(n, body)
		}
	}
	a.backup(1, 2, 2)
	// A recycled segment ahead: the right name, no status file.
	os.WriteFile(filepath.Join(walDir, name(1, 7)), []byte("recycled"), 0o600)
	os.WriteFile(filepath.Join(walDir, "00000002.history"), []byte("1\t0/7000000\tx\n"), 0o600)
	rep := verifyWAL(t, a, nil, 0)
	paths, notes, err := PushCandidates(pgdata, rep)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range paths {
		got = append(got, filepath.Base(p))
	}
	if want := []string{names[2], names[5], "00000002.history"}; !slices.Equal(got, want) {
		t.Fatalf("candidates %v (notes %v), want %v", got, notes, want)
	}
}
