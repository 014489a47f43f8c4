package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// completeSegment copies the segment c has just finished (after a write and
// pg_switch_wal) into a fresh directory the server user can read, and
// returns its path. c must not archive into the prefix under test, or its
// archiver would race the test's own pushes.
func completeSegment(t *testing.T, c *testpg.Cluster) string {
	t.Helper()
	c.Exec(t, "CREATE TABLE IF NOT EXISTS seg_filler (v text); INSERT INTO seg_filler VALUES (md5(random()::text))")
	name := c.QueryString(t, "SELECT pg_walfile_name(pg_switch_wal())")
	b, err := os.ReadFile(filepath.Join(c.DataDir, "pg_wal", name))
	if err != nil {
		t.Fatal(err)
	}
	return writeShared(t, name, b)
}

// writeShared writes b as a file named name in a new directory owned by
// the server user.
func writeShared(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(testpg.SharedTempDir(t), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// walObjects lists the stored objects for one WAL file name.
func walObjects(t *testing.T, a *archive, name string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(a.Path, "wal", name+"-*"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// walDigest is the digest walnut puts in a WAL key: the first 16 hex
// digits of the SHA-256 of the uncompressed file.
func walDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertIdempotentPush pushes orig twice (both succeed, one object), then
// a different file under the same name (refused, object untouched).
func assertIdempotentPush(t *testing.T, a *archive, orig []byte, name string) {
	t.Helper()
	first := writeShared(t, name, orig)
	mustRun(t, "", env(a, nil), "wal-push", first)
	objs := walObjects(t, a, name)
	if len(objs) != 1 {
		t.Fatalf("after one push of %s: objects %v, want exactly one", name, objs)
	}
	if !strings.Contains(filepath.Base(objs[0]), "-"+walDigest(orig)) {
		t.Errorf("object %s does not carry the content digest %s", objs[0], walDigest(orig))
	}
	stored := readFile(t, objs[0])

	again := mustRun(t, "", env(a, nil), "wal-push", first)
	if !strings.Contains(again.Stderr, "already archived") {
		t.Errorf("second push of the same %s does not log that it was already archived:\n%s", name, again)
	}
	if got := walObjects(t, a, name); !slices.Equal(got, objs) {
		t.Fatalf("after the second push of the same %s: objects %v, want %v", name, got, objs)
	}

	other := bytes.Clone(orig)
	i := len(other) / 2
	if len(other) > 8192 {
		i = 8192 + 1000 // past the first page header, so the segment header still parses
	}
	other[i] ^= 0xff
	r := run(t, "", env(a, nil), "wal-push", writeShared(t, name, other))
	if r.Code == 0 {
		t.Fatalf("push of other content under %s succeeded: %s", name, r)
	}
	if !strings.Contains(r.Stderr, name) || !strings.Contains(r.Stderr, "different file is already archived") {
		t.Errorf("conflicting push of %s does not name the file and the conflict:\n%s", name, r)
	}
	if got := walObjects(t, a, name); !slices.Equal(got, objs) {
		t.Fatalf("after the conflicting push of %s: objects %v, want %v", name, got, objs)
	}
	if !bytes.Equal(readFile(t, objs[0]), stored) {
		t.Fatalf("conflicting push of %s changed the stored object %s", name, objs[0])
	}
}

func TestWALPushIdempotentHistoryFile(t *testing.T) {
	a := newArchive(t)
	hist := []byte("1\t0/3000108\tno recovery target specified\n")
	assertIdempotentPush(t, a, hist, "00000002.history")
}

func TestWALPushIdempotentSegment(t *testing.T) {
	// The cluster does not archive: nothing but the test writes to a.
	c := testpg.New(t, testpg.Options{})
	seg := completeSegment(t, c)
	b := readFile(t, seg)
	if len(b) != 16<<20 {
		t.Fatalf("segment %s has %d bytes, want 16 MiB", seg, len(b))
	}
	a := newArchive(t)
	assertIdempotentPush(t, a, b, filepath.Base(seg))
	if _, err := os.Stat(filepath.Join(a.Path, "walnut.json")); err != nil {
		t.Errorf("pushing a segment into a new archive did not record its identity: %v", err)
	}
}

func TestWALPushRefusesNonWALName(t *testing.T) {
	a := newArchive(t)
	p := writeShared(t, "notawal.txt", []byte("hello\n"))
	r := run(t, "", env(a, nil), "--terse", "wal-push", p)
	if r.Code != 1 {
		t.Fatalf("wal-push of %s: want exit 1, got %s", p, r)
	}
	if !strings.HasPrefix(r.Stderr, "walnut: ") || !strings.Contains(r.Stderr, "notawal.txt") || !strings.Contains(r.Stderr, "not a WAL") {
		t.Errorf("wal-push of a non-WAL name: want one clear line naming it, got:\n%s", r)
	}
	if m, _ := filepath.Glob(filepath.Join(a.Path, "wal", "*")); len(m) != 0 {
		t.Errorf("refused push stored %v", m)
	}
}

// A second cluster cannot mix its WAL or backups into an archive that
// belongs to another system identifier.
func TestForeignClusterRefused(t *testing.T) {
	a := newArchive(t)
	ca := archivingCluster(t, a, nil)
	switchAndWaitArchived(t, ca)
	idBefore := readFile(t, filepath.Join(a.Path, "walnut.json"))

	// B archives, as backup-push requires, but into its own archive.
	cb := archivingCluster(t, newArchive(t), nil)
	seg := completeSegment(t, cb)
	name := filepath.Base(seg)
	segBytes := readFile(t, seg)
	before := walObjects(t, a, name)

	r := run(t, "", env(a, nil), "wal-push", seg)
	if r.Code == 0 {
		t.Fatalf("wal-push of another cluster's %s into the archive succeeded: %s", name, r)
	}
	if !strings.Contains(r.Stderr, "system identifier") || !strings.Contains(r.Stderr, "another cluster") {
		t.Errorf("refusal does not mention the system identifier and the other cluster:\n%s", r)
	}
	after := walObjects(t, a, name)
	if !slices.Equal(after, before) {
		t.Errorf("refused push changed wal/%s-*: before %v, after %v", name, before, after)
	}
	for _, o := range after {
		if strings.Contains(o, walDigest(segBytes)) {
			t.Errorf("the foreign segment was stored as %s", o)
		}
	}

	r = run(t, "", env(a, cb), "backup-push", cb.DataDir)
	if r.Code == 0 {
		t.Fatalf("backup-push of another cluster into the archive succeeded: %s", r)
	}
	if !strings.Contains(r.Stderr, "another cluster") {
		t.Errorf("backup-push refusal does not mention the other cluster:\n%s", r)
	}
	if m, _ := filepath.Glob(filepath.Join(a.Path, "backups", "*")); len(m) != 0 {
		t.Errorf("refused backup-push left %v", m)
	}
	if !bytes.Equal(readFile(t, filepath.Join(a.Path, "walnut.json")), idBefore) {
		t.Errorf("walnut.json changed after refused pushes")
	}
}
