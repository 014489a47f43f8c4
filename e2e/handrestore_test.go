package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// An operator who has lost walnut restores with the stock tools, as the
// README says: zstd -dc | tar -x for each partition, then pg_control.tar,
// and WAL files decompressed by hand for restore_command. PostgreSQL's
// pg_verifybackup accepts the result and the server recovers from it.
func TestHandRestoreWithoutWalnut(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		testpg.Require(t, "zstd", err)
	}
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Pgbench(t, "-i", "-s", "2", "-q")
	name := strings.TrimSpace(mustRun(t, "", env(a, src, "WALNUT_PARTITION_SIZE=4194304"), "backup-push", src.DataDir).Stdout)
	src.Pgbench(t, "-n", "-t", "100", "postgres")
	want := src.QueryString(t, tableDigest)
	switchAndWaitArchived(t, src)

	dest := filepath.Join(a.Dir, "by-hand")
	parts, _ := filepath.Glob(filepath.Join(a.Path, "backups", name, "part_*.tar.zst"))
	sort.Strings(parts)
	if len(parts) < 2 {
		t.Fatalf("want several partitions, got %v", parts)
	}
	script := "set -e; mkdir -m 0700 " + dest + "; cd " + dest + "\n"
	for _, p := range append(parts, filepath.Join(a.Path, "backups", name, "pg_control.tar.zst")) {
		script += "zstd -dc " + p + " | tar -xf -\n"
	}
	script += "zstd -dc " + filepath.Join(a.Path, "backups", name, "backup_manifest.zst") + " > backup_manifest\n"
	// restore_command without walnut: the one object under the name.
	restore := `f=$(ls ` + a.Path + `/wal/%f-* 2>/dev/null | head -1); [ -n "$f" ] || exit 1; zstd -dcq "$f" > %p`
	out, err := testpg.Command(t.Context(), nil, "bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("hand restore: %v\n%s", err, out)
	}
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
	verifyBackup(t, dest)
	if _, err := os.Stat(filepath.Join(dest, "global", "pg_control")); err != nil {
		t.Fatal(err)
	}
	restored := testpg.Start(t, dest, testpg.Options{})
	restored.WaitReady(t, 5*time.Minute)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("hand-restored data digest %s, want %s", got, want)
	}
}
