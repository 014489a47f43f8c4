package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	core "github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/internal/testpg"
)

// Two clusters (two initdbs, two system identifiers) wal-push their first
// segment, of the same name, into one empty prefix at the same moment,
// released together by a shared lock. Exactly one owns walnut.json, the
// other exits non-zero with the one-line identity error naming both
// identifiers, and the archive holds the owner's segment only. A few
// rounds per store, each on a new prefix, so that the race is a real one.
func TestIdentityRace(t *testing.T) {
	const rounds = 4
	var clusters [2]raceCluster
	for i := range clusters {
		c := testpg.New(t, testpg.Options{})
		seg := completeSegment(t, c)
		clusters[i] = raceCluster{
			sysid:  c.QueryString(t, "SELECT system_identifier FROM pg_control_system()"),
			seg:    seg,
			digest: walDigest(readFile(t, seg)),
		}
		// The segment is copied out: the server is no longer needed.
		c.Stop(t)
	}
	if clusters[0].sysid == clusters[1].sysid {
		t.Fatalf("both clusters have system identifier %s", clusters[0].sysid)
	}
	if filepath.Base(clusters[0].seg) != filepath.Base(clusters[1].seg) {
		t.Logf("the clusters' segments differ in name: %s, %s", filepath.Base(clusters[0].seg), filepath.Base(clusters[1].seg))
	}

	t.Run("file", func(t *testing.T) {
		for round := range rounds {
			identityRace(t, round, newArchive(t), clusters)
		}
	})
	t.Run("minio", func(t *testing.T) {
		m := startMinIO(t)
		for round := range rounds {
			a := newS3Archive(t, m, "")
			a.Prefix += fmt.Sprintf("-round%d", round)
			identityRace(t, round, a, clusters)
		}
	})
}

type raceCluster struct {
	sysid  string
	seg    string // a copy of its first complete segment
	digest string
}

func identityRace(t *testing.T, round int, a *archive, clusters [2]raceCluster) {
	t.Helper()
	b := newBarrier(t)
	var procs [2]*raceProc
	for i, c := range clusters {
		// Alternate who starts first, so neither is favoured.
		j := (i + round) % 2
		procs[j] = startBehind(t, b, env(a, nil), "wal-push", c.seg)
	}
	b.waitBlocked(t, len(procs))
	b.release(t)
	var results [2]result
	for i := range procs {
		results[(i+round)%2] = procs[i].wait(t)
	}

	owner := -1
	for i, r := range results {
		if r.Code == 0 {
			if owner >= 0 {
				t.Fatalf("round %d: both clusters' wal-push succeeded on one prefix:\n%s\n%s", round, results[0], results[1])
			}
			owner = i
		}
	}
	if owner < 0 {
		t.Fatalf("round %d: neither wal-push succeeded:\n%s\n%s", round, results[0], results[1])
	}
	loser := 1 - owner
	if results[loser].Code != 1 {
		t.Errorf("round %d: the refused wal-push exited %d, want 1", round, results[loser].Code)
	}
	s := openArchive(t, a)
	id, err := core.ReadIdentity(t.Context(), s)
	if err != nil {
		t.Fatalf("round %d: read walnut.json: %v", round, err)
	}
	if id.SystemIdentifier != clusters[owner].sysid {
		t.Errorf("round %d: walnut.json names %s, but the wal-push of %s succeeded", round, id.SystemIdentifier, clusters[owner].sysid)
	}
	var refusals []string
	for line := range strings.Lines(results[loser].Stderr) {
		if strings.Contains(line, "another cluster") {
			refusals = append(refusals, line)
		}
	}
	if len(refusals) != 1 || !strings.Contains(refusals[0], clusters[owner].sysid) || !strings.Contains(refusals[0], clusters[loser].sysid) {
		t.Errorf("round %d: want one line refusing the other cluster, naming %s and %s:\n%s", round, clusters[owner].sysid, clusters[loser].sysid, results[loser])
	}
	want := []string{"wal/" + filepath.Base(clusters[owner].seg) + "-" + clusters[owner].digest}
	var got []string
	for key := range listObjects(t, s, "wal/") {
		got = append(got, key)
	}
	slices.Sort(got)
	if len(got) != 1 || !strings.HasPrefix(got[0], want[0]) {
		t.Errorf("round %d: wal/ holds %q; want only the owner's segment %s*", round, got, want[0])
	}
	t.Logf("round %d: cluster %d (%s) owns the archive", round, owner, clusters[owner].sysid)
}

// barrier holds an exclusive flock on a file; commands started behind it
// with flock -s all wait for it, and all go at once when it is released.
type barrier struct {
	path string
	f    *os.File
	ino  uint64
}

func newBarrier(t *testing.T) *barrier {
	t.Helper()
	p := filepath.Join(testpg.SharedTempDir(t), "barrier")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return &barrier{path: p, f: f, ino: st.Ino}
}

// waitBlocked waits until n lockers wait for the barrier, as /proc/locks
// shows them ("->" lines on the file's inode).
func (b *barrier) waitBlocked(t *testing.T, n int) {
	t.Helper()
	suffix := fmt.Sprintf(":%d", b.ino)
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile("/proc/locks")
		if err != nil {
			t.Fatal(err)
		}
		waiting := 0
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) > 6 && f[1] == "->" && strings.HasSuffix(f[6], suffix) {
				waiting++
			}
		}
		if waiting >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d commands wait at the barrier after 30s", waiting, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *barrier) release(t *testing.T) {
	t.Helper()
	if err := syscall.Flock(int(b.f.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
}

type raceProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan error
}

// startBehind starts walnut as the server user behind the barrier.
func startBehind(t *testing.T, b *barrier, env []string, args ...string) *raceProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	p := &raceProc{done: make(chan error, 1)}
	p.cmd = testpg.Command(ctx, env, "flock", append([]string{"-s", b.path, walnutBin}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	})
	return p
}

func (p *raceProc) wait(t *testing.T) result {
	t.Helper()
	err := <-p.done
	r := result{Stdout: p.stdout.String(), Stderr: p.stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("walnut: %v", err)
	}
	return r
}
