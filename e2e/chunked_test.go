package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	core "github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/tarball"
)

// Relation files larger than WALNUT_CHUNK_SIZE are stored in chunks over
// several partitions; backup-fetch reassembles them in place, PostgreSQL's
// pg_verifybackup accepts the restore, backup-verify checks the chunks,
// and the README's hand restore with stock tools gives the same data.
func TestChunkedRelationFiles(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		testpg.Require(t, "zstd", err)
	}
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Pgbench(t, "-i", "-s", "3", "-q") // pgbench_accounts: about 39 MB
	cfg := env(a, src, "WALNUT_CHUNK_SIZE=1MiB", "WALNUT_PARTITION_SIZE=8MiB")
	push, pushRSS := runMeasured(t, cfg, "backup-push", src.DataDir)
	name := strings.TrimSpace(push.Stdout)
	src.Pgbench(t, "-n", "-t", "100", "postgres")
	want := src.QueryString(t, tableDigest)
	switchAndWaitArchived(t, src)

	// The manifest lists pgbench_accounts once, whole, with chunks that
	// both workers packed.
	accounts := src.QueryString(t, "SELECT pg_relation_filepath('pgbench_accounts')")
	m := readFilesJSON(t, a, name)
	var f tarball.File
	for _, e := range m.Files {
		if e.Path == accounts {
			f = e
		}
	}
	parts := map[int]bool{}
	for _, c := range f.Chunks {
		parts[c.Partition] = true
	}
	if m.Format != core.ManifestFormatChunked || len(f.Chunks) < 30 || len(parts) < 2 || tarball.CheckChunks(f) != nil {
		t.Fatalf("files.json format %d: %s in %d chunks over partitions %v (%v)", m.Format, accounts, len(f.Chunks), parts, tarball.CheckChunks(f))
	}

	mustRun(t, "", env(a, nil), "backup-verify", name)

	dest := filepath.Join(a.Dir, "restored")
	_, fetchRSS := runMeasured(t, env(a, nil), "backup-fetch", dest, name)
	t.Logf("peak RSS: backup-push %d KiB, backup-fetch %d KiB", pushRSS, fetchRSS)
	if pushRSS > 40<<10 || fetchRSS > 40<<10 {
		t.Errorf("peak RSS over 40 MiB: backup-push %d KiB, backup-fetch %d KiB", pushRSS, fetchRSS)
	}
	if ents, _ := filepath.Glob(filepath.Join(dest, accounts) + tarball.ChunkSuffix + "*"); len(ents) > 0 {
		t.Fatalf("chunk files left in the restore: %v", ents)
	}
	verifyBackup(t, dest)
	restored := startRestored(t, a, dest)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("restored digest %s, want %s", got, want)
	}
	restored.Stop(t)

	byHand := filepath.Join(a.Dir, "by-hand")
	handRestore(t, a, name, byHand)
	verifyBackup(t, byHand)
	hand := testpg.Start(t, byHand, testpg.Options{})
	hand.WaitReady(t, 5*time.Minute)
	if got := hand.QueryString(t, tableDigest); got != want {
		t.Fatalf("hand-restored digest %s, want %s", got, want)
	}
}

// handRestore restores backup name into dest with stock tools, as the
// README says: zstd -dc | tar -x for each partition, then pg_control.tar;
// chunked files joined; WAL decompressed by hand for restore_command.
func handRestore(t *testing.T, a *archive, name, dest string) {
	t.Helper()
	b := filepath.Join(a.Path, "backups", name)
	parts, _ := filepath.Glob(filepath.Join(b, "part_*.tar.zst"))
	sort.Strings(parts)
	if len(parts) < 2 {
		t.Fatalf("want several partitions, got %v", parts)
	}
	// The README's lines, with its paths.
	script := "set -e; B=" + b + "\nmkdir -m 0700 " + dest + " && cd " + dest + "\n" +
		`for p in $B/part_*.tar.zst $B/pg_control.tar.zst; do zstd -dc "$p" | tar -xf -; done` + "\n" +
		handJoinChunks + "\n" +
		`zstd -dc $B/backup_manifest.zst > backup_manifest` + "\n"
	out, err := testpg.Command(t.Context(), nil, "bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("hand restore: %v\n%s", err, out)
	}
	// restore_command without walnut: the one object under the name.
	restore := `f=$(ls ` + a.Path + `/wal/%f-* 2>/dev/null | head -1); [ -n "$f" ] || exit 1; zstd -dcq "$f" > %p`
	conf, err := os.OpenFile(filepath.Join(dest, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.WriteString("restore_command = '" + strings.ReplaceAll(restore, "'", "''") + "'\n"); err != nil {
		t.Fatal(err)
	}
	conf.Close()
	if err := os.WriteFile(filepath.Join(dest, "recovery.signal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, "global", "pg_control")); err != nil {
		t.Fatal(err)
	}
}

// handJoinChunks is the README's line that joins chunked files after tar
// (kept equal to it by TestREADMEJoinsChunksAsTested).
const handJoinChunks = `find . -name '*.walnut-chunk-0000000000000000' | while read -r c; do f="${c%.walnut-chunk-*}"; for p in "$f".walnut-chunk-*; do cat "$p" >> "$f"; rm "$p"; done; chmod 0600 "$f"; done`

// The hand restore above runs the README's own line.
func TestREADMEJoinsChunksAsTested(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte(handJoinChunks)) {
		t.Fatalf("README.md does not hold the chunk-joining line the hand restore test runs:\n%s", handJoinChunks)
	}
}

func readFilesJSON(t *testing.T, a *archive, name string) *core.Manifest {
	t.Helper()
	out, err := exec.Command("zstd", "-dc", filepath.Join(a.Path, "backups", name, "files.json.zst")).Output()
	if err != nil {
		t.Fatal(err)
	}
	var m core.Manifest
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// runMeasured runs walnut as this process's user, failing unless it exits
// 0, and returns its peak RSS in KiB. GNU time measures walnut alone: the
// rusage of a child of this test would count the test's own memory, since
// a child's high-water mark starts at its parent's size (os/exec starts it
// with vfork): one CI run read 48 MiB that way for a walnut of 30.
func runMeasured(t *testing.T, env []string, args ...string) (result, int64) {
	t.Helper()
	gnuTime, err := exec.LookPath("/usr/bin/time")
	if err != nil {
		t.Fatalf("GNU time, which scripts/setup.sh installs: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	timeOut := filepath.Join(t.TempDir(), "time.out")
	cmd := exec.CommandContext(ctx, gnuTime, append([]string{"-f", "%M", "-o", timeOut, walnutBin}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Dir = os.TempDir()
	r := runCommand(t, cmd)
	if r.Code != 0 {
		t.Fatalf("walnut %s: %s", strings.Join(args, " "), r)
	}
	out, err := os.ReadFile(timeOut)
	if err != nil {
		t.Fatal(err)
	}
	var kib int64
	if _, err := fmt.Sscan(string(out), &kib); err != nil {
		t.Fatalf("GNU time wrote %q: %v", out, err)
	}
	return r, kib
}
