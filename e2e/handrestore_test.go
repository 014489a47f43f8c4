package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// An operator who has lost walnut restores with the stock tools, as the
// README says (handRestore): zstd -dc | tar -x for each partition, then
// pg_control.tar, and WAL files decompressed by hand for restore_command.
// PostgreSQL's pg_verifybackup accepts the result and the server recovers
// from it. No file here is larger than a chunk; TestChunkedRelationFiles
// restores chunked files by hand.
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
	handRestore(t, a, name, dest)
	verifyBackup(t, dest)
	restored := testpg.Start(t, dest, testpg.Options{})
	restored.WaitReady(t, 5*time.Minute)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("hand-restored data digest %s, want %s", got, want)
	}
}
