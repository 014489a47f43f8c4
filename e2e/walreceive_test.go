package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/internal/testserver"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/status"
)

// streamingCluster is a server that archives nothing itself: WAL reaches
// the archive only through wal-receive.
func streamingCluster(t *testing.T, conf map[string]string) *testpg.Cluster {
	c := map[string]string{"archive_mode": "off"}
	for k, v := range conf {
		c[k] = v
	}
	return testpg.New(t, testpg.Options{Conf: c})
}

// startReceive runs walnut wal-receive against c into the archive env
// names, with its work directory under dir.
func startReceive(t *testing.T, env []string, dir string, args ...string) *walnutProc {
	t.Helper()
	args = append([]string{"wal-receive", "--dir", filepath.Join(dir, "receive")}, args...)
	return startWalnut(t, "", env, args...)
}

// waitStreaming waits until walnut streams from c.
func waitStreaming(t *testing.T, c *testpg.Cluster, p *walnutProc) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if c.QueryString(t, "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'walnut' AND state = 'streaming'") == "1" {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("wal-receive ended: %v\n%s", p.err, p.output())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("wal-receive is not streaming after a minute\n%s", p.output())
}

// walnutPID is the walnut process itself: under runuser, its child.
func (p *walnutProc) walnutPID(t *testing.T) int {
	t.Helper()
	pid := p.cmd.Process.Pid
	if !testpg.AsRoot() {
		return pid
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("children of runuser %d: %q", pid, b)
	}
	return child
}

// terminate sends SIGTERM to walnut alone (as systemd's stop would) and
// requires exit 0 within timeout.
func (p *walnutProc) terminate(t *testing.T, timeout time.Duration) {
	t.Helper()
	if err := syscall.Kill(p.walnutPID(t), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("wal-receive did not stop within %s of SIGTERM\n%s", timeout, p.output())
	}
	if p.err != nil {
		t.Fatalf("wal-receive after SIGTERM: %v\n%s", p.err, p.output())
	}
}

func (p *walnutProc) kill(t *testing.T) {
	t.Helper()
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// rowWriter commits one row at a time into marks until stopped, and
// knows the last row whose commit returned.
type rowWriter struct {
	committed atomic.Int64
	cancel    context.CancelFunc
	done      chan error
}

func startRowWriter(t *testing.T, c *testpg.Cluster) *rowWriter {
	t.Helper()
	c.Exec(t, "CREATE TABLE IF NOT EXISTS marks (id bigint PRIMARY KEY)")
	conn := c.Connect(t)
	ctx, cancel := context.WithCancel(t.Context())
	w := &rowWriter{cancel: cancel, done: make(chan error, 1)}
	go func() {
		for id := int64(1); ; id++ {
			if _, err := conn.Exec(ctx, "INSERT INTO marks VALUES ($1)", id); err != nil {
				w.done <- err
				return
			}
			w.committed.Store(id)
			select {
			case <-ctx.Done():
				w.done <- nil
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *rowWriter) stop(t *testing.T) int64 {
	t.Helper()
	w.cancel()
	<-w.done
	return w.committed.Load()
}

// restoreToEnd restores LATEST to the end of the archive (the default
// recovery) and returns the highest row of marks found.
func restoreToEnd(t *testing.T, a *archive, dest string) (int64, *testpg.Cluster) {
	t.Helper()
	mustRun(t, "", env(a, nil), "backup-fetch", dest, "LATEST")
	verifyBackup(t, dest)
	restored := startRestored(t, a, dest)
	got, err := strconv.ParseInt(restored.QueryString(t, "SELECT coalesce(max(id), 0) FROM marks"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return got, restored
}

// segmentGaps lists the segments missing on timeline 1 between the first
// and the last whole one in names.
func segmentGaps(t *testing.T, names []string) []string {
	t.Helper()
	var segs []uint64
	for _, n := range names {
		if !pgcontrol.IsWALFileName(n) || !strings.HasPrefix(n, "00000001") {
			continue
		}
		_, no, err := pgcontrol.ParseWALFileName(n, pgcontrol.DefaultWALSegmentSize)
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, no)
	}
	slices.Sort(segs)
	if len(segs) < 2 {
		t.Fatalf("fewer than two whole segments archived: %v", names)
	}
	var gaps []string
	for i := 1; i < len(segs); i++ {
		for no := segs[i-1] + 1; no < segs[i]; no++ {
			gaps = append(gaps, pgcontrol.WALFileName(1, no, pgcontrol.DefaultWALSegmentSize))
		}
	}
	return gaps
}

// walNames are the WAL names in a's archive, on any store.
func walNames(t *testing.T, a *archive) []string {
	t.Helper()
	var names []string
	for key := range listObjects(t, openArchive(t, a), "wal/") {
		name := strings.TrimPrefix(key, "wal/")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			names = append(names, name[:i])
		}
	}
	slices.Sort(names)
	return names
}

// Streaming alone, asynchronous, on file://: archive_mode is off and
// wal-receive is the only way WAL reaches the archive. A base backup,
// writes, the walsender killed in the middle of them (wal-receive
// reconnects and the archive has no gap), then the primary is killed and
// its data directory deleted, and wal-receive with it. A restore to the
// end of the archive holds every row committed before the last partial
// upload.
func TestWALReceiveAsyncFile(t *testing.T) {
	a := newArchive(t)
	c := streamingCluster(t, nil)
	p := startReceive(t, env(a, c, "WALNUT_LOG_LEVEL=debug"), a.Dir, "--partial-interval", "1s")
	waitStreaming(t, c, p)
	c.Pgbench(t, "-i", "-s", "2", "-q")
	mustRun(t, "", env(a, c), "backup-push", c.DataDir)

	w := startRowWriter(t, c)
	c.Pgbench(t, "-n", "-c", "2", "-t", "300", "postgres")
	before := c.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	c.Exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'walnut'")
	// Whole segments go by while it is away.
	for range 2 {
		c.Pgbench(t, "-n", "-c", "2", "-t", "200", "postgres")
		c.Exec(t, "SELECT pg_switch_wal()")
	}
	waitStreaming(t, c, p)
	c.Pgbench(t, "-n", "-c", "2", "-t", "100", "postgres")
	last := w.stop(t)
	after := c.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	if after <= before {
		t.Fatalf("the writes after the dropped connection did not cross a segment (%s to %s)", before, after)
	}
	// The last row reached wal-receive's disk; two partial intervals later
	// it is in the archive.
	lsn := c.QueryString(t, "SELECT pg_current_wal_lsn()")
	deadline := time.Now().Add(30 * time.Second)
	for c.QueryString(t, "SELECT (write_lsn >= '"+lsn+"')::int FROM pg_stat_replication WHERE application_name = 'walnut'") != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("wal-receive did not receive %s: %s\n%s", lsn, c.QueryString(t, "SELECT sent_lsn || ' ' || write_lsn || ' ' || flush_lsn || ' ' || pg_current_wal_lsn() FROM pg_stat_replication"), p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond)
	c.Kill(t)
	p.kill(t)
	if err := os.RemoveAll(c.DataDir); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.output(), "reconnecting") {
		t.Errorf("wal-receive did not log a reconnect after pg_terminate_backend\n%s", p.output())
	}
	names := walNames(t, a)
	if gaps := segmentGaps(t, names); len(gaps) > 0 {
		t.Fatalf("the archive misses %v after the dropped connection", gaps)
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, ".partial") }) {
		t.Errorf("no .partial in the archive: %v", names)
	}
	got, _ := restoreToEnd(t, a, filepath.Join(a.Dir, "restored"))
	if got < last {
		t.Fatalf("restore to the end of the archive has rows up to %d, %d were committed and uploaded\n%s", got, last, p.output())
	}
}

// Streaming alone, synchronous, on MinIO behind a proxy: walnut is the
// synchronous standby, so a commit returns only once its WAL is in the
// store. The store goes away under writes: commits wait instead of
// succeeding unprotected, and when it comes back nothing is lost. The
// primary is then killed with wal-receive, and a restore to the end of
// the archive holds every committed row.
func TestWALReceiveSynchronousMinIO(t *testing.T) {
	m := startMinIO(t)
	tp := testserver.StartToxiproxy(t)
	proxy := tp.Proxy(t, "minio", m.Addr)
	a := newS3Archive(t, m, "")
	viaProxy := append([]string{"WALNUT_PREFIX=" + a.Prefix}, m.Env(proxy.URL())...)
	c := streamingCluster(t, map[string]string{"synchronous_standby_names": "walnut"})
	p := startReceive(t, append(viaProxy, c.Env()...), a.Dir, "--synchronous", "--partial-interval", "1h")
	waitStreaming(t, c, p)
	c.Exec(t, "CREATE TABLE marks (id bigint PRIMARY KEY)")
	mustRun(t, "", env(a, c), "backup-push", c.DataDir)

	w := startRowWriter(t, c)
	time.Sleep(time.Second)
	proxy.SetEnabled(t, false)
	// Whatever was in flight settles; from then on nothing commits.
	time.Sleep(2 * time.Second)
	stalled := w.committed.Load()
	// Longer than the storage decorator's own retries (some 15 s), so
	// wal-receive's retry, which never gives up, is what carries on.
	time.Sleep(28 * time.Second)
	if now := w.committed.Load(); now != stalled {
		t.Errorf("commits went on while the store was away: %d then %d", stalled, now)
	}
	proxy.SetEnabled(t, true)
	deadline := time.Now().Add(time.Minute)
	for w.committed.Load() < stalled+20 {
		if time.Now().After(deadline) {
			t.Fatalf("commits did not resume after the store came back (%d)\n%s", w.committed.Load(), p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(p.output(), "store failed") {
		t.Errorf("wal-receive did not log the store outage\n%s", p.output())
	}
	c.Exec(t, "SELECT pg_switch_wal()")
	c.Kill(t)
	last := w.committed.Load()
	p.kill(t)
	if err := os.RemoveAll(c.DataDir); err != nil {
		t.Fatal(err)
	}
	got, _ := restoreToEnd(t, a, filepath.Join(a.Dir, "restored"))
	if got < last {
		t.Fatalf("restore to the end of the archive has rows up to %d, %d were committed\n%s", got, last, p.output())
	}
}

// Promotion: wal-receive streams from a standby, which is promoted. It
// follows timeline 2: the archive holds 00000002.history (as the server
// wrote it), timeline 1's last segment as a .partial and whole segments
// of timeline 2. WAL that arrived after the last upload is stored by
// SIGTERM, which exits 0, and wal-fetch serves it under the segment's name.
func TestWALReceiveFollowsPromotion(t *testing.T) {
	a := newArchive(t)
	primary := streamingCluster(t, nil)
	standbyDir := filepath.Join(testpg.SharedTempDir(t), "standby")
	out, err := primary.Command(t.Context(), nil, filepath.Join(primary.BinDir, "pg_basebackup"),
		"-D", standbyDir, "-R", "-X", "stream", "-c", "fast").CombinedOutput()
	if err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	standby := testpg.Start(t, standbyDir, testpg.Options{Conf: map[string]string{"archive_mode": "off"}})
	p := startReceive(t, env(a, standby), a.Dir, "--partial-interval", "1h")
	waitStreaming(t, standby, p)
	primary.Exec(t, "CREATE TABLE marks (id bigint PRIMARY KEY); INSERT INTO marks SELECT generate_series(1, 1000)")
	primary.Exec(t, "SELECT pg_switch_wal()")
	waitReplayed(t, primary, standby)
	primary.Stop(t)
	standby.Exec(t, "SELECT pg_promote()")
	standby.Exec(t, "INSERT INTO marks SELECT generate_series(1001, 2000)")
	standby.Exec(t, "SELECT pg_switch_wal()")

	deadline := time.Now().Add(time.Minute)
	var names []string
	for {
		names = walNames(t, a)
		whole2 := slices.ContainsFunc(names, func(n string) bool { return pgcontrol.IsWALFileName(n) && strings.HasPrefix(n, "00000002") })
		partial1 := slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "00000001") && strings.HasSuffix(n, ".partial") })
		if slices.Contains(names, "00000002.history") && whole2 && partial1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the promotion the archive holds %v; want 00000002.history, a .partial of timeline 1 and a whole segment of timeline 2\n%s", names, p.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// More rows on timeline 2 reach wal-receive's disk but, with an
	// upload interval of an hour, not the store; SIGTERM stores them.
	standby.Exec(t, "INSERT INTO marks SELECT generate_series(2001, 3000)")
	lsn := standby.QueryString(t, "SELECT pg_current_wal_lsn()::text")
	seg := standby.QueryString(t, "SELECT pg_walfile_name('"+lsn+"')")
	off, err := strconv.ParseInt(standby.QueryString(t, "SELECT (pg_wal_lsn_diff('"+lsn+"', '0/0')::numeric % 16777216)::text"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(time.Minute)
	for standby.QueryString(t, "SELECT coalesce((write_lsn >= '"+lsn+"')::text, '') FROM pg_stat_replication WHERE application_name = 'walnut'") != "true" {
		if time.Now().After(deadline) {
			t.Fatalf("wal-receive did not receive %s\n%s", lsn, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.terminate(t, time.Minute)
	partial := filepath.Join(a.Dir, "fetched.partial")
	mustRun(t, "", env(a, nil), "wal-fetch", seg, partial)
	gotSeg, err := os.ReadFile(partial)
	if err != nil {
		t.Fatal(err)
	}
	wantSeg, err := os.ReadFile(filepath.Join(standbyDir, "pg_wal", seg))
	if err != nil {
		t.Fatal(err)
	}
	if len(gotSeg) != len(wantSeg) || string(gotSeg[:off]) != string(wantSeg[:off]) {
		t.Fatalf("wal-fetch %s after SIGTERM: %d bytes, not the server's first %d", seg, len(gotSeg), off)
	}
	fetched := filepath.Join(a.Dir, "fetched.history")
	mustRun(t, "", env(a, nil), "wal-fetch", "00000002.history", fetched)
	got, err := os.ReadFile(fetched)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(standbyDir, "pg_wal", "00000002.history"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("archived 00000002.history:\n%s\nthe server's:\n%s", got, want)
	}
}

// A restart resumes where the archive ends: WAL written while wal-receive
// was stopped is kept by the slot and streamed on the next start, with no
// gap. Afterwards the server's archive_command (wal-push, failing until
// then) archives the same segments into the same archive: each is
// accepted once, with no conflict on either side. Bad settings are
// refused with one line and exit 2.
func TestWALReceiveRestartResumes(t *testing.T) {
	a := newArchive(t)
	c := archivingCluster(t, a, nil)
	c.Exec(t, "ALTER SYSTEM SET archive_command = 'false'")
	c.Exec(t, "SELECT pg_reload_conf()")
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"wal-receive"}, "no work directory"},
		{[]string{"wal-receive", "--dir", a.Dir, "--slot", "Bad-Slot"}, "--slot"},
		{[]string{"wal-receive", "--dir", a.Dir, "--dsn", "host=/tmp password=secret"}, "--dsn holds a password"},
		{[]string{"wal-receive", "--dir", a.Dir, "--partial-interval", "0s"}, "--partial-interval"},
	} {
		r := run(t, "", env(a, c), bad.args...)
		line := strings.TrimSpace(r.Stderr)
		if r.Code != 2 || !strings.Contains(line, bad.want) || strings.Contains(line, "\n") || strings.Contains(line, "secret") {
			t.Errorf("walnut %v: want exit 2 and one line about %q, got %s", bad.args, bad.want, r)
		}
	}

	p := startReceive(t, env(a, c), a.Dir)
	waitStreaming(t, c, p)
	c.Pgbench(t, "-i", "-s", "1", "-q")
	c.Exec(t, "SELECT pg_switch_wal()")
	p.terminate(t, time.Minute)
	first := walNames(t, a)

	for range 3 {
		c.Pgbench(t, "-n", "-t", "200", "postgres")
		c.Exec(t, "SELECT pg_switch_wal()")
	}
	last := c.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	p = startReceive(t, env(a, c), a.Dir)
	waitStreaming(t, c, p)
	deadline := time.Now().Add(time.Minute)
	var names []string
	for {
		names = walNames(t, a)
		if slices.ContainsFunc(names, func(n string) bool { return pgcontrol.IsWALFileName(n) && n >= last }) ||
			slices.Contains(names, last+".partial") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart the archive did not reach %s: %v\n%s", last, names, p.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(p.output(), "streaming from where the archive ends") {
		t.Errorf("the restart did not start where the archive ends\n%s", p.output())
	}
	if gaps := segmentGaps(t, names); len(gaps) > 0 {
		t.Fatalf("the archive misses %v after a restart (before: %v, after: %v)", gaps, first, names)
	}
	p.terminate(t, time.Minute)
	c.Exec(t, "ALTER SYSTEM RESET archive_command")
	c.Exec(t, "SELECT pg_reload_conf()")
	switchAndWaitArchived(t, c)
	// Whichever came second found the same object and stored nothing.
	accepted := strings.Contains(p.output(), "already_stored=true") || strings.Contains(c.LogTail(500), "already archived with the same content")
	if !accepted || strings.Contains(p.output(), "level=ERROR") {
		t.Errorf("no segment stored by both was accepted as already stored, or wal-receive failed\n%s\n%s", p.output(), c.LogTail(30))
	}
	seen := map[string]bool{}
	for _, n := range walNames(t, a) {
		if seen[n] {
			t.Errorf("%s archived twice", n)
		}
		seen[n] = true
	}
}

// When the server no longer has the WAL where the archive ends (the slot
// was dropped while wal-receive was stopped), wal-receive says the archive
// has a gap, at ERROR, and goes on from the server's current segment
// rather than retrying forever or pretending nothing is missing.
func TestWALReceiveReportsLostWAL(t *testing.T) {
	a := newArchive(t)
	c := streamingCluster(t, nil)
	p := startReceive(t, env(a, c), a.Dir)
	waitStreaming(t, c, p)
	c.Exec(t, "CREATE TABLE filler AS SELECT g FROM generate_series(1, 1000) g")
	first := c.QueryString(t, "SELECT pg_walfile_name(pg_switch_wal())")
	waitWALStored(t, a, first, time.Minute, p)
	p.terminate(t, time.Minute)
	c.Exec(t, "SELECT pg_drop_replication_slot('walnut')")
	lost := c.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	for range 3 {
		c.Exec(t, "INSERT INTO filler SELECT g FROM generate_series(1, 1000) g")
		c.Exec(t, "SELECT pg_switch_wal()")
		c.Exec(t, "CHECKPOINT")
	}
	if c.QueryString(t, "SELECT count(*) FROM pg_ls_waldir() WHERE name = '"+lost+"'") != "0" {
		t.Fatalf("the server still has %s after three checkpoints", lost)
	}
	here := c.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	p = startReceive(t, env(a, c), a.Dir)
	deadline := time.Now().Add(time.Minute)
	for !slices.ContainsFunc(walNames(t, a), func(n string) bool { return strings.HasPrefix(n, here) }) {
		if time.Now().After(deadline) {
			t.Fatalf("wal-receive did not go on from %s\n%s", here, p.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out := p.output(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "the archive will have a gap") {
		t.Errorf("wal-receive did not report the gap at ERROR\n%s", out)
	}
	p.terminate(t, time.Minute)
}

// Streaming alone, asynchronous, on MinIO behind a proxy: the store goes
// away for 30 s under writes. Commits go on (nothing waits for an
// asynchronous receiver), wal-receive keeps what it received and retries,
// and once the store is back the archive has no gap and a restore to its
// end holds every row committed before the last upload.
func TestWALReceiveAsyncMinIOOutage(t *testing.T) {
	m := startMinIO(t)
	tp := testserver.StartToxiproxy(t)
	proxy := tp.Proxy(t, "minio", m.Addr)
	a := newS3Archive(t, m, "")
	viaProxy := append([]string{"WALNUT_PREFIX=" + a.Prefix}, m.Env(proxy.URL())...)
	c := streamingCluster(t, nil)
	p := startReceive(t, append(viaProxy, c.Env()...), a.Dir, "--partial-interval", "1s")
	waitStreaming(t, c, p)
	c.Pgbench(t, "-i", "-s", "1", "-q")
	mustRun(t, "", env(a, c), "backup-push", c.DataDir)

	w := startRowWriter(t, c)
	time.Sleep(time.Second)
	proxy.SetEnabled(t, false)
	outage := w.committed.Load()
	for range 2 {
		c.Pgbench(t, "-n", "-c", "2", "-t", "200", "postgres")
		c.Exec(t, "SELECT pg_switch_wal()")
	}
	time.Sleep(30 * time.Second)
	if now := w.committed.Load(); now < outage+100 {
		t.Errorf("asynchronous: commits stalled while the store was away (%d then %d)", outage, now)
	}
	proxy.SetEnabled(t, true)
	c.Pgbench(t, "-n", "-c", "2", "-t", "100", "postgres")
	last := w.stop(t)
	end := c.QueryString(t, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	c.Exec(t, "SELECT pg_switch_wal()")
	// The segment holding the last row is stored whole once switched.
	waitWALStored(t, a, end, 90*time.Second, p)
	c.Kill(t)
	p.kill(t)
	if err := os.RemoveAll(c.DataDir); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.output(), "store failed") {
		t.Errorf("wal-receive did not log the store outage\n%s", p.output())
	}
	if gaps := segmentGaps(t, walNames(t, a)); len(gaps) > 0 {
		t.Fatalf("the archive misses %v after the store outage", gaps)
	}
	got, _ := restoreToEnd(t, a, filepath.Join(a.Dir, "restored"))
	if got < last {
		t.Fatalf("restore to the end of the archive has rows up to %d, %d were committed and stored\n%s", got, last, p.output())
	}
}

// Streaming alone, synchronous, on file://: every commit that returned is
// in the archive, so killing the primary and deleting its data directory
// loses none of them, with no segment switch and no partial interval to
// wait for.
func TestWALReceiveSynchronousFile(t *testing.T) {
	a := newArchive(t)
	c := streamingCluster(t, map[string]string{"synchronous_standby_names": "walnut"})
	p := startReceive(t, env(a, c), a.Dir, "--synchronous", "--partial-interval", "1h")
	waitStreaming(t, c, p)
	c.Exec(t, "CREATE TABLE marks (id bigint PRIMARY KEY)")
	mustRun(t, "", env(a, c), "backup-push", c.DataDir)
	w := startRowWriter(t, c)
	c.Pgbench(t, "-i", "-s", "1", "-q")
	time.Sleep(2 * time.Second)

	// walnut status shows the receiver as a synchronous standby and its
	// slot with the WAL the slot holds on the server.
	sr := run(t, "", env(a, c), "status", "--json")
	var rep status.Report
	if err := json.Unmarshal([]byte(sr.Stdout), &rep); err != nil || rep.Server == nil || rep.Server.Error != nil {
		t.Fatalf("walnut status --json: %v\n%s", err, sr)
	}
	i := slices.IndexFunc(rep.Server.ReplicationSlots, func(s status.ReplicationSlot) bool { return s.Name == "walnut" })
	if i < 0 || !rep.Server.ReplicationSlots[i].Active || rep.Server.ReplicationSlots[i].RetainedBytes == nil {
		t.Errorf("status: slot walnut missing, inactive or without retained bytes: %+v", rep.Server.ReplicationSlots)
	}
	j := slices.IndexFunc(rep.Server.Standbys, func(s status.StandbyReport) bool { return s.Name == "walnut" })
	if j < 0 || rep.Server.Standbys[j].SyncState != "sync" || rep.Server.Standbys[j].FlushLagBytes == nil {
		t.Errorf("status: standby walnut missing, not sync or without a flush lag: %+v", rep.Server.Standbys)
	}

	c.Kill(t)
	last := w.committed.Load()
	p.kill(t)
	if err := os.RemoveAll(c.DataDir); err != nil {
		t.Fatal(err)
	}
	if last < 10 {
		t.Fatalf("only %d rows committed with walnut as the synchronous standby", last)
	}
	got, _ := restoreToEnd(t, a, filepath.Join(a.Dir, "restored"))
	if got < last {
		t.Fatalf("restore to the end of the archive has rows up to %d, %d were committed\n%s", got, last, p.output())
	}
}

// A slot the server invalidates (max_slot_wal_keep_size) while wal-receive
// is away: PostgreSQL 18 refuses it for good, so wal-receive reports the
// gap at ERROR, drops the slot, creates it anew and streams from the
// server's current segment instead of retrying the refusal forever.
// Older servers take the invalidated slot and report the removed WAL,
// which TestWALReceiveReportsLostWAL covers.
func TestWALReceiveInvalidatedSlot(t *testing.T) {
	a := newArchive(t)
	c := testpg.New(t, testpg.Options{Major: 18, InitdbArgs: []string{"--wal-segsize=1"}, Conf: map[string]string{
		"archive_mode": "off", "max_slot_wal_keep_size": "2MB", "max_wal_size": "4MB", "min_wal_size": "2MB",
	}})
	p := startReceive(t, env(a, c), a.Dir)
	waitStreaming(t, c, p)
	c.Exec(t, "CREATE TABLE filler AS SELECT g FROM generate_series(1, 1000) g")
	first := c.QueryString(t, "SELECT pg_walfile_name(pg_switch_wal())")
	waitWALStored(t, a, first, time.Minute, p)
	p.terminate(t, time.Minute)
	for range 10 {
		c.Exec(t, "INSERT INTO filler SELECT g FROM generate_series(1, 20000) g")
		c.Exec(t, "SELECT pg_switch_wal()")
		c.Exec(t, "CHECKPOINT")
		if c.QueryString(t, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'walnut'") == "lost" {
			break
		}
	}
	if st := c.QueryString(t, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'walnut'"); st != "lost" {
		t.Fatalf("the server did not invalidate the slot: wal_status %s", st)
	}
	p = startReceive(t, env(a, c), a.Dir)
	waitStreaming(t, c, p)
	c.Exec(t, "INSERT INTO filler SELECT g FROM generate_series(1, 1000) g")
	next := c.QueryString(t, "SELECT pg_walfile_name(pg_switch_wal())")
	waitWALStored(t, a, next, time.Minute, p)
	if st := c.QueryString(t, "SELECT active::text || ' ' || wal_status FROM pg_replication_slots WHERE slot_name = 'walnut'"); st != "true reserved" {
		t.Errorf("slot walnut after wal-receive went on: %s, want active and reserved", st)
	}
	if out := p.output(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "invalidated the replication slot") {
		t.Errorf("wal-receive did not report the invalidated slot at ERROR\n%s", out)
	}
	p.terminate(t, time.Minute)
}

// waitWALStored waits until name is in a's archive, for up to within.
func waitWALStored(t *testing.T, a *archive, name string, within time.Duration, p *walnutProc) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !slices.Contains(walNames(t, a), name) {
		if time.Now().After(deadline) {
			t.Fatalf("%s is not in the archive after %s: %v\n%s", name, within, walNames(t, a), p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
