package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	core "github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// Crash trials (issue 18, part 1): a real walnut command against a real
// cluster and archive, killed with SIGKILL at a moment drawn from a seeded
// random source, then the archive's invariants checked, the command run
// again to completion and the invariants checked again.
//
// WALNUT_TRIALS sets the trials per command (default 5, `make trials`
// runs 25). Every test logs its seed; WALNUT_TRIAL_SEED=N replays it, and
// a failing trial names its own seed and index.

// trials is one command's series of seeded trials.
type trials struct {
	seed uint64
	n    int
}

func newTrials(t *testing.T) trials { return newTrialsDefault(t, 5) }

// newTrialsDefault is newTrials with another count when WALNUT_TRIALS is
// unset: the MinIO repeats of the file:// trials run 2 in make test.
func newTrialsDefault(t *testing.T, n int) trials {
	t.Helper()
	tr := trials{n: n, seed: uint64(time.Now().UnixNano())}
	if v := os.Getenv("WALNUT_TRIALS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("WALNUT_TRIALS=%q: want a positive number", v)
		}
		tr.n = n
	}
	if v := os.Getenv("WALNUT_TRIAL_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("WALNUT_TRIAL_SEED=%q: want an unsigned number", v)
		}
		tr.seed = s
	}
	t.Logf("%d trials, seed %d (replay: WALNUT_TRIAL_SEED=%d WALNUT_TRIALS=%d go test -count=1 -run '^%s$' ./e2e/)",
		tr.n, tr.seed, tr.seed, tr.n, t.Name())
	return tr
}

// run runs trial i = 0..n-1, each as a subtest with its own random source,
// derived from the seed and the index so one trial's draws do not depend
// on how many another made.
func (tr trials) run(t *testing.T, trial func(t *testing.T, i int, rng *rand.Rand)) {
	t.Helper()
	for i := range tr.n {
		ok := t.Run(fmt.Sprintf("trial%02d", i), func(t *testing.T) {
			trial(t, i, rand.New(rand.NewPCG(tr.seed, uint64(i))))
		})
		if !ok {
			t.Fatalf("trial %d failed; replay with WALNUT_TRIAL_SEED=%d WALNUT_TRIALS=%d", i, tr.seed, i+1)
		}
	}
}

// walnutProc is a walnut command started in its own process group as the
// server user, so SIGKILL reaches walnut itself and not only runuser.
type walnutProc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
	err  error
}

var outMu sync.Mutex

type lockedWriter struct{ b *bytes.Buffer }

func (w lockedWriter) Write(p []byte) (int, error) {
	outMu.Lock()
	defer outMu.Unlock()
	return w.b.Write(p)
}

func startWalnut(t *testing.T, dir string, env []string, args ...string) *walnutProc {
	t.Helper()
	cmd := testpg.Command(t.Context(), env, walnutBin, args...)
	if dir != "" {
		cmd.Dir = dir
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &walnutProc{cmd: cmd, out: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = lockedWriter{p.out}, lockedWriter{p.out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

// killAfter kills the process group after d unless the command finished
// first; it reports whether the kill cut the command short.
func (p *walnutProc) killAfter(t *testing.T, d time.Duration) bool {
	t.Helper()
	select {
	case <-p.done:
		return false
	case <-time.After(d):
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatal("a killed walnut did not end within a minute")
	}
	var ee *exec.ExitError
	return errors.As(p.err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signaled()
}

func (p *walnutProc) output() string {
	outMu.Lock()
	defer outMu.Unlock()
	return p.out.String()
}

// timed runs a walnut command to completion and returns how long it took:
// the trials draw their kill moments from [0, that), with one in ten
// after it (the command may have finished).
func timed(t *testing.T, dir string, env []string, args ...string) (result, time.Duration) {
	t.Helper()
	start := time.Now()
	r := mustRun(t, dir, env, args...)
	return r, time.Since(start)
}

func drawDelay(rng *rand.Rand, full time.Duration) time.Duration {
	return time.Duration(rng.Int64N(int64(full)*10/9 + 1))
}

// invariants checks an archive after a kill or a completed run. verified
// remembers the backups already restored and checked with pg_verifybackup:
// their objects are never rewritten, and every check still decodes them
// and finds every part.
type invariants struct {
	a        *archive
	s        storage.Store
	verified map[string]bool
	restores int
}

func newInvariants(t *testing.T, a *archive) *invariants {
	return &invariants{a: a, s: openArchive(t, a), verified: map[string]bool{}}
}

// restoreLatest restores LATEST (--no-recovery) and checks it with
// pg_verifybackup.
func (iv *invariants) restoreLatest(t *testing.T) {
	t.Helper()
	dest := filepath.Join(testpg.SharedTempDir(t), "verify")
	mustRun(t, "", env(iv.a, nil), "backup-fetch", "--no-recovery", dest, "LATEST")
	verifyBackup(t, dest)
	os.RemoveAll(dest)
	iv.restores++
}

// check fails t unless:
//   - every object under a final key decodes whole (JSON objects parse;
//     encoded ones decode to their end, with the WAL digest matching);
//   - every listed backup has its parts and its start..stop WAL, and
//     restores (--no-recovery) to a directory pg_verifybackup accepts,
//     once per backup (by the name LATEST when it is the newest);
//   - every WAL file c's server has marked .done is in the archive with
//     its digest (c may be nil), from the oldest listed backup's start
//     segment on (delete removes what is older).
func (iv *invariants) check(t *testing.T, c *testpg.Cluster) {
	t.Helper()
	// The server's .done files first: one marked after the listing below
	// would be missing from it for no fault of walnut's.
	var done map[string]string
	if c != nil {
		done = doneFiles(c)
	}
	objects := listObjects(t, iv.s, "")
	for key := range objects {
		iv.checkWhole(t, key)
	}
	list := sentinels(t, iv.a)
	checkListedWhole(t, iv.a, iv.s)
	if len(list) > 0 {
		latest := list[0]
		for _, sn := range list {
			if sn.FinishTime.After(latest.FinishTime) {
				latest = sn
			}
		}
		for _, sn := range list {
			// A backup's parts never change once listed, and every check
			// decodes them all: each backup is restored once, by the name
			// LATEST when it is the newest.
			if iv.verified[sn.Name] {
				continue
			}
			ref := sn.Name
			if sn.Name == latest.Name {
				ref = "LATEST"
			}
			dest := filepath.Join(testpg.SharedTempDir(t), "verify")
			mustRun(t, "", env(iv.a, nil), "backup-fetch", "--no-recovery", dest, ref)
			verifyBackup(t, dest)
			os.RemoveAll(dest)
			iv.verified[sn.Name] = true
			iv.restores++
		}
	}
	if c != nil {
		// A delete removes WAL older than the oldest backup it keeps.
		var from uint64
		for i, sn := range list {
			if seg := segmentNumber(t, sn.StartSegment); i == 0 || seg < from {
				from = seg
			}
		}
		checkDone(t, done, objects, from)
	}
}

// checkWhole fails unless the object under key is whole.
func (iv *invariants) checkWhole(t *testing.T, key string) {
	t.Helper()
	ctx := t.Context()
	if strings.HasSuffix(key, ".json") || strings.HasSuffix(key, ".deleting") {
		rc, err := iv.s.Get(ctx, key)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return // a running backup's marker may go between list and get
			}
			t.Fatal(err)
		}
		defer rc.Close()
		var v any
		if err := json.NewDecoder(rc).Decode(&v); err != nil {
			t.Fatalf("%s is not whole JSON: %v", key, err)
		}
		return
	}
	rc, err := core.OpenDecoded(ctx, iv.s, key, nil)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return
		}
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatalf("%s does not decode whole: %v", key, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("%s does not decode whole: %v", key, err)
	}
	if strings.HasPrefix(key, core.WALDir) {
		o, err := core.ParseWALKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil))[:core.DigestLen]; got != o.Digest {
			t.Fatalf("%s decodes to a file whose digest is %s", key, got)
		}
	}
}

// doneFiles maps the WAL files c's server has marked .done and that are
// still in pg_wal to their digests.
func doneFiles(c *testpg.Cluster) map[string]string {
	out := map[string]string{}
	done, _ := filepath.Glob(filepath.Join(c.DataDir, "pg_wal", "archive_status", "*.done"))
	for _, d := range done {
		name := strings.TrimSuffix(filepath.Base(d), ".done")
		b, err := os.ReadFile(filepath.Join(c.DataDir, "pg_wal", name))
		if err != nil {
			continue // recycled or removed since it was archived
		}
		sum := sha256.Sum256(b)
		out[name] = hex.EncodeToString(sum[:])[:core.DigestLen]
	}
	return out
}

// checkDone fails unless every file in done from segment from on is in
// the archive under its own digest.
func checkDone(t *testing.T, done map[string]string, objects map[string]storage.ObjectInfo, from uint64) {
	t.Helper()
	checked := 0
	for name, digest := range done {
		if len(name) >= 24 && pgcontrol.IsWALFileName(name[:24]) && segmentNumber(t, name[:24]) < from {
			continue
		}
		found := false
		for key := range objects {
			if strings.HasPrefix(key, core.WALKeyPrefix(name)+digest) {
				found = true
			}
		}
		if !found {
			t.Fatalf("pg_wal/%s is marked .done but the archive has no object with its digest %s", name, digest)
		}
		checked++
	}
	t.Logf("invariants: %d objects whole, %d .done WAL files in the archive", len(objects), checked)
}
