package verify

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
	"github.com/walnut-pg/walnut/tarball"
)

var quiet = slog.New(slog.DiscardHandler)

func verifyBackups(t *testing.T, a *testArchive, kr *crypto.Keyring, names ...string) []*BackupResult {
	t.Helper()
	res, err := Backups(context.Background(), BackupOptions{Store: a.s, Names: names, All: len(names) == 0, Keyring: kr, Concurrency: 2, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// wantProblem fails unless exactly the problems named are found, each on
// an object whose key contains object.
func wantProblem(t *testing.T, r *BackupResult, object, words string) {
	t.Helper()
	if len(r.Problems) == 0 {
		t.Fatalf("%s: no problem found, want one on %s", r.Name, object)
	}
	for _, p := range r.Problems {
		if strings.Contains(p.Object, object) && strings.Contains(p.String(), words) {
			return
		}
	}
	t.Fatalf("%s: problems %v, want one on %s saying %q", r.Name, r.Problems, object, words)
}

func TestBackupsGood(t *testing.T) {
	a := newTestArchive(t, nil)
	a.segments(1, 2, 4)
	sn := a.backup(1, 2, 3)
	res := verifyBackups(t, a, nil, "LATEST")
	if len(res) != 1 || !res[0].OK() {
		t.Fatalf("good backup: %+v", res[0])
	}
	r := res[0]
	if r.Name != sn.Name || r.Files != 5 || r.WALSegments != 2 || r.FirstWAL != sn.StartSegment || r.LastWAL != sn.StopSegment {
		t.Errorf("report %+v: want 5 files and segments %s to %s", r, sn.StartSegment, sn.StopSegment)
	}
}

// One flipped byte in each kind of object, and each missing object, is
// found and named; the rest of the backup is still checked.
func TestBackupsCorrupt(t *testing.T) {
	a := newTestArchive(t, nil)
	a.segments(1, 2, 4)
	sn := a.backup(1, 2, 3)
	ext := archive.BackupExt(sn)
	seg3 := a.walKey(pgcontrol.WALFileName(1, 3, seg))
	for _, c := range []struct {
		name, key, object, words string
		change                   func(key string) func()
	}{
		{"partition", archive.PartitionKey(sn.Name, 2, ext), "part_0002", "", a.flip},
		{"pg_control.tar", sn.ControlKey, "pg_control.tar", "", a.flip},
		{"files.json", sn.ManifestKey, "files.json", "no file of the backup could be checked", a.flip},
		{"backup_manifest", sn.PGManifestKey, "backup_manifest", "", a.flip},
		{"WAL segment", seg3, seg3, "", a.flip},
		{"missing partition", archive.PartitionKey(sn.Name, 1, ext), "part_0001", "missing from the archive; 4 of the entries", a.remove},
		{"missing WAL segment", seg3, "wal/000000010000000000000003-", "missing from the archive", a.remove},
	} {
		t.Run(c.name, func(t *testing.T) {
			undo := c.change(c.key)
			defer undo()
			res := verifyBackups(t, a, nil, sn.Name)
			wantProblem(t, res[0], c.object, c.words)
		})
	}
	if res := verifyBackups(t, a, nil); !res[0].OK() {
		t.Fatalf("after undoing every change: %v", res[0].Problems)
	}
}

// A file of a partition that differs from its manifest entry is named by
// its path; decoding goes on to the end of the partition.
func TestBackupsBadFile(t *testing.T) {
	a := newTestArchive(t, nil)
	a.segments(1, 2, 3)
	sn := a.backup(1, 2, 3)
	m, err := archive.ReadManifest(context.Background(), a.s, sn.ManifestKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Files {
		if m.Files[i].Path == "base/1/1259" {
			m.Files[i].CRC32C++
		}
	}
	if _, err := archive.PutManifest(context.Background(), a.s, sn.ManifestKey, a.enc, m); err != nil {
		t.Fatal(err)
	}
	r := verifyBackups(t, a, nil, sn.Name)[0]
	if len(r.Problems) != 1 || r.Problems[0].Path != "base/1/1259" || !strings.Contains(r.Problems[0].Problem, "CRC32C") {
		t.Fatalf("problems %v, want one CRC32C mismatch of base/1/1259", r.Problems)
	}
	if r.Files != 4 {
		t.Errorf("%d files whole, want the other 4", r.Files)
	}
}

// Without the private key nothing encrypted counts as checked.
func TestBackupsEncryptedWithoutKey(t *testing.T) {
	to, kr := fixture.KeyPair(t)
	a := newTestArchive(t, to)
	a.segments(1, 2, 3)
	sn := a.backup(1, 2, 3)
	if r := verifyBackups(t, a, kr, sn.Name)[0]; !r.OK() {
		t.Fatalf("with the key: %v", r.Problems)
	}
	r := verifyBackups(t, a, nil, sn.Name)[0]
	if r.OK() || r.Files != 0 || r.WALSegments != 0 {
		t.Fatalf("without the key: %+v, want problems and nothing counted as checked", r)
	}
	for _, p := range r.Problems {
		if !strings.Contains(p.Problem, "no private key") {
			t.Errorf("%s: want it reported as not checked for want of a key", p)
		}
	}
}

func TestBackupsNotAnArchive(t *testing.T) {
	_, err := Backups(context.Background(), BackupOptions{Store: mem.New(), All: true, Log: quiet})
	if !errors.Is(err, archive.ErrNotAnArchive) {
		t.Fatalf("empty store: %v, want ErrNotAnArchive", err)
	}
	a := newTestArchive(t, nil)
	if _, err := Backups(context.Background(), BackupOptions{Store: a.s, All: true, Log: quiet}); !errors.Is(err, archive.ErrNoBackups) {
		t.Fatalf("no backups: %v, want ErrNoBackups", err)
	}
}

// A backup with chunked files: every chunk is checked in its partition, a
// chunked file counts once, and a damaged chunk is named.
func TestBackupsChunked(t *testing.T) {
	a := newTestArchive(t, nil)
	none, err := compression.Parse("none")
	if err != nil {
		t.Fatal(err)
	}
	a.enc.Codec, a.chunk = none, 16384
	a.segments(1, 2, 4)
	sn := a.backup(1, 2, 3)
	res := verifyBackups(t, a, nil, sn.Name)
	if !res[0].OK() || res[0].Files != 5 {
		t.Fatalf("good chunked backup: %d files, problems %v", res[0].Files, res[0].Problems)
	}
	undo := a.flip(archive.PartitionKey(sn.Name, 2, archive.BackupExt(sn)))
	defer undo()
	wantProblem(t, verifyBackups(t, a, nil, sn.Name)[0], "part_0002", "base/1/2608"+tarball.ChunkSuffix)
}

// backup-verify reads: on a good archive and on a damaged one it writes
// and deletes nothing, in the store as in the report's absence.
func TestBackupsWriteNothing(t *testing.T) {
	a := newTestArchive(t, nil)
	a.segments(1, 2, 4)
	a.backup(1, 2, 3)
	a.segments(1, 5, 7)
	sn := a.backup(1, 5, 6)
	a.remove(a.walKey(sn.StopSegment))
	f := storagetest.NewFaulty(a.s, storagetest.Fault{Op: storagetest.OpPut}, storagetest.Fault{Op: storagetest.OpDelete})
	res, err := Backups(context.Background(), BackupOptions{Store: f, All: true, Concurrency: 2, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || !res[0].OK() && !res[1].OK() || res[0].OK() && res[1].OK() {
		t.Fatalf("want one good backup and one missing a segment: %+v", res)
	}
	if p, d := f.Calls(storagetest.OpPut), f.Calls(storagetest.OpDelete); p != 0 || d != 0 {
		t.Errorf("backup-verify wrote to the archive: %d puts, %d deletes", p, d)
	}
}
