package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// A wal-push killed with SIGKILL while it writes its object into a file://
// archive leaves its temp file under wal/, which no listing shows.
// delete garbage lists it in its plan (text and --json) and, with
// --confirm, removes it once it is older than --grace, while a temp file
// written just now (an upload that may be running) stays.
func TestKilledPutTempSwept(t *testing.T) {
	a := newArchive(t)
	c := testpg.New(t, testpg.Options{})
	mustRun(t, "", env(a, nil), "wal-push", completeSegment(t, c))
	walDir := filepath.Join(a.Path, "wal")

	// Kill a wal-push as soon as its temp file appears. The segment is
	// stored uncompressed, so writing and syncing it takes long enough to
	// be seen; a push that finishes first is tried again with the next.
	var killed, killedSeg string
	for attempt := 0; killed == "" && attempt < 20; attempt++ {
		seg := completeSegment(t, c)
		p := startWalnut(t, "", env(a, nil, "WALNUT_COMPRESSION=none"), "wal-push", seg)
		deadline := time.Now().Add(30 * time.Second)
	poll:
		for time.Now().Before(deadline) {
			select {
			case <-p.done:
				break poll
			default:
			}
			if m, _ := filepath.Glob(filepath.Join(walDir, ".tmp-*")); len(m) > 0 {
				syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
				<-p.done
				if _, err := os.Stat(m[0]); err == nil {
					killed, killedSeg = m[0], seg
				}
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	if killed == "" {
		t.Fatal("no wal-push was killed while its temp file existed in 20 tries")
	}
	killedKey := "wal/" + filepath.Base(killed)
	t.Logf("killed wal-push left %s", killedKey)

	// The grace period is 2s: wait it out for the killed push's temp file,
	// then leave one written just now.
	time.Sleep(2500 * time.Millisecond)
	fresh := filepath.Join(walDir, ".tmp-4242424242")
	if err := os.WriteFile(fresh, []byte("an upload in progress"), 0o640); err != nil {
		t.Fatal(err)
	}

	dry := mustRun(t, "", env(a, nil), "delete", "garbage", "--grace", "2s")
	if !strings.Contains(dry.Stdout, "would delete temp file "+killedKey) || strings.Contains(dry.Stdout, "tmp-4242424242") ||
		!strings.Contains(dry.Stdout, "temp files: 1 to delete") || !strings.Contains(dry.Stdout, "1 kept as possibly in use") {
		t.Errorf("delete garbage dry run does not plan the killed push's temp file alone:\n%s", dry)
	}
	js := mustRun(t, "", env(a, nil), "delete", "garbage", "--grace", "2s", "--json")
	var plan struct {
		Temps []struct {
			Key     string `json:"key"`
			Bytes   int64  `json:"bytes"`
			Deleted bool   `json:"deleted"`
		} `json:"temp_files"`
		Kept struct {
			TempFiles int `json:"temp_files"`
		} `json:"kept"`
	}
	if err := json.Unmarshal([]byte(js.Stdout), &plan); err != nil {
		t.Fatalf("delete garbage --json: %v\n%s", err, js.Stdout)
	}
	if len(plan.Temps) != 1 || plan.Temps[0].Key != killedKey || plan.Temps[0].Deleted || plan.Kept.TempFiles != 1 {
		t.Errorf("delete garbage --json plans %+v, keeps %d temp files; want %s alone, not yet deleted, and one kept", plan.Temps, plan.Kept.TempFiles, killedKey)
	}
	if _, err := os.Stat(killed); err != nil {
		t.Fatalf("a dry run removed the temp file: %v", err)
	}

	done := mustRun(t, "", env(a, nil), "delete", "garbage", "--grace", "2s", "--confirm")
	if !strings.Contains(done.Stdout, "deleted temp file "+killedKey) {
		t.Errorf("delete garbage --confirm does not report the temp file deleted:\n%s", done)
	}
	if _, err := os.Stat(killed); !os.IsNotExist(err) {
		t.Errorf("the killed push's temp file is still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("the fresh temp file was removed: %v", err)
	}
	// The archive is whole: the segment the killed push held is stored
	// by the next one.
	mustRun(t, "", env(a, nil), "wal-push", killedSeg)
	if got := walObjects(t, a, filepath.Base(killedSeg)); len(got) != 1 {
		t.Errorf("after a push of the killed one's segment, wal/ holds %q", got)
	}
	if m, _ := filepath.Glob(filepath.Join(walDir, ".tmp-*")); len(m) != 1 || m[0] != fresh {
		t.Errorf("temp files after another wal-push: %q, want only the fresh one", m)
	}
}
