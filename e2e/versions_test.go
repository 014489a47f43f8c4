package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/pgcontrol"
)

// The version suite: walnut against a real server of every major it
// supports, 12 to 18 (scripts/setup.sh installs them; 15 is Debian's, the
// one the rest of the suite runs on). Each major gets one source cluster
// that carries the whole story in order, so a major costs one load, one
// backup and a few restores: pg_control and the WAL page header against
// what the server reports, archiving and a base backup under load, a
// point-in-time restore, a standby that follows the archive and promotes,
// the wrong-cluster guard, wal-fetch's exit codes as the server reads them,
// and pg_control after a clean stop.
func TestVersions(t *testing.T) {
	for major := pgcontrol.MinMajor; major <= pgcontrol.MaxMajor; major++ {
		t.Run(fmt.Sprintf("PG%d", major), func(t *testing.T) {
			t.Parallel()
			testVersion(t, major)
		})
	}
}

// versionInitdbArgs varies the clusters so that data checksums and 64 MiB
// segments are proven on majors other than 15. PG 18's initdb turns data
// checksums on by default.
var versionInitdbArgs = map[int][]string{
	12: {"--data-checksums"},
	14: {"--wal-segsize=64"},
	17: {"--data-checksums", "--wal-segsize=64"},
}

func wantChecksums(major int) string {
	if major >= 18 || slices.Contains(versionInitdbArgs[major], "--data-checksums") {
		return "on"
	}
	return "off"
}

func testVersion(t *testing.T, major int) {
	a := newArchive(t)
	src := archivingClusterOpts(t, a, testpg.Options{Major: major, InitdbArgs: versionInitdbArgs[major]})
	if v := src.QueryString(t, "SELECT current_setting('server_version_num')::int / 10000"); v != strconv.Itoa(major) {
		t.Fatalf("asked for PostgreSQL %d, server is %s", major, v)
	}
	if got := src.QueryString(t, "SHOW data_checksums"); got != wantChecksums(major) {
		t.Fatalf("source data_checksums = %s, want %s", got, wantChecksums(major))
	}
	// Each step builds on the ones before it.
	step := func(name string, fn func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, fn) {
			t.FailNow()
		}
	}

	step("pg_control running", func(t *testing.T) {
		checkControlFile(t, src, major, pgcontrol.StateInProduction, nil)
	})

	var segName string
	var seg []byte
	step("WAL page header", func(t *testing.T) {
		src.Pgbench(t, "-i", "-s", "2", "-q")
		segName = src.QueryString(t, "SELECT pg_walfile_name(pg_switch_wal())")
		seg = readFile(t, filepath.Join(src.DataDir, "pg_wal", segName))
		sysid, segSize, err := pgcontrol.WALSegmentSystemIdentifier(seg)
		if err != nil {
			t.Fatalf("%s: %v", segName, err)
		}
		want := src.QueryString(t, "SELECT s.system_identifier || '/' || i.bytes_per_wal_segment FROM pg_control_system() s, pg_control_init() i")
		if got := fmt.Sprintf("%d/%d", sysid, segSize); got != want || len(seg) != int(segSize) {
			t.Fatalf("%s (%d bytes): header says system identifier/segment size %s, server %s", segName, len(seg), got, want)
		}
		if v, err := pgcontrol.WALSegmentPGVersion(seg); err != nil || v != major {
			t.Fatalf("%s: WAL magic says PostgreSQL %d (%v), want %d", segName, v, err, major)
		}
	})

	var backup, want, target string
	step("backup under load, restore to a time", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		load := src.Command(ctx, nil, src.PgbenchPath(t), "-n", "-c", "2", "-T", "120", "postgres")
		if err := load.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		r := mustRun(t, "", env(a, src, "WALNUT_PARTITION_SIZE=8388608"), "backup-push", src.DataDir)
		cancel()
		load.Wait()
		backup = strings.TrimSpace(r.Stdout)
		if !strings.HasPrefix(backup, "base_00000001") {
			t.Fatalf("backup name %q\n%s", backup, r.Stderr)
		}

		src.Pgbench(t, "-n", "-c", "2", "-t", "100", "postgres")
		want = src.QueryString(t, tableDigest)
		// Commits after the target are a second later, so the target
		// separates them from everything in want.
		target = src.QueryString(t, "SELECT clock_timestamp()::text")
		time.Sleep(1100 * time.Millisecond)
		src.Pgbench(t, "-n", "-t", "100", "postgres")
		switchAndWaitArchived(t, src)

		dest := filepath.Join(a.Dir, "pitr")
		mustRun(t, "", env(a, nil), "backup-fetch", dest, "LATEST",
			"--recovery-target-time", target, "--recovery-target-action", "promote")
		verifyBackup(t, dest)
		// The server's own label, as pg_backup_stop or pg_stop_backup gave it.
		label := string(readFile(t, filepath.Join(dest, "backup_label")))
		if !strings.Contains(label, "START WAL LOCATION: ") || !strings.Contains(label, "\nLABEL: walnut ") {
			t.Fatalf("restored backup_label is not the server's:\n%s", label)
		}
		restored := startRestored(t, a, dest)
		if got := restored.QueryString(t, tableDigest); got != want {
			t.Fatalf("restored to %s: digest %s, want %s (the source's at that time)", target, got, want)
		}
		if got := restored.QueryString(t, "SHOW data_checksums"); got != wantChecksums(major) {
			t.Errorf("restored data_checksums = %s, want %s as the source", got, wantChecksums(major))
		}
		// Promotion started timeline 2; after a checkpoint pg_control says so.
		restored.Exec(t, "CHECKPOINT")
		if cd := checkControlFile(t, restored, major, pgcontrol.StateInProduction, nil); cd.TimelineID != 2 {
			t.Errorf("restored pg_control: timeline %d, want 2", cd.TimelineID)
		}
		h := checkHistory(t, filepath.Join(dest, "pg_wal", "00000002.history"))
		if !strings.HasPrefix(h.Reason, "before ") && !strings.HasPrefix(h.Reason, "after ") {
			t.Errorf("history reason %q does not name the time target", h.Reason)
		}
		restored.Stop(t)
	})

	step("wal-fetch", func(t *testing.T) {
		work := testpg.SharedTempDir(t)
		got := filepath.Join(work, "RECOVERYXLOG")
		mustRun(t, work, env(a, nil), "wal-fetch", segName, "RECOVERYXLOG")
		if !bytes.Equal(readFile(t, got), seg) {
			t.Fatalf("wal-fetch %s wrote other bytes than the server wrote", segName)
		}
		missing := filepath.Join(work, "missing")
		if r := run(t, work, env(a, nil), "wal-fetch", "00000001000000FF000000FE", missing); r.Code != 66 {
			t.Fatalf("wal-fetch of a segment not in the archive: want exit 66, got %s", r)
		}
		assertAbsent(t, missing)
	})

	step("standby follows the archive, then promotes", func(t *testing.T) {
		dest := filepath.Join(a.Dir, "standby")
		mustRun(t, "", env(a, nil), "backup-fetch", dest, backup, "--standby")
		standby := testpg.Start(t, dest, testpg.Options{
			Env: []string{"WALNUT_PREFIX=" + a.Prefix},
			// After "not in the archive" (66) the standby asks again after
			// this long; the default 5s only slows the test down.
			Conf: map[string]string{"hot_standby": "on", "archive_mode": "off", "wal_retrieve_retry_interval": "200ms"},
		})
		// New WAL reaches the standby only through the archive.
		src.Exec(t, "CREATE TABLE after_standby AS SELECT g FROM generate_series(1, 1000) g")
		lsn, err := pgcontrol.ParseLSN(src.QueryString(t, "SELECT pg_current_wal_lsn()::text"))
		if err != nil {
			t.Fatal(err)
		}
		wantNow := src.QueryString(t, tableDigest)
		switchAndWaitArchived(t, src)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			n, err := standby.Query(t.Context(), "SELECT count(*)::text FROM after_standby")
			if err == nil && n == "1000" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("standby did not replay the new WAL (%q, %v)\n%s", n, err, standby.LogTail(30))
			}
			time.Sleep(300 * time.Millisecond)
		}
		if got := standby.QueryString(t, tableDigest); got != wantNow {
			t.Fatalf("standby digest %s, want the source's %s", got, wantNow)
		}
		checkControlFile(t, standby, major, pgcontrol.StateInArchiveRecovery, nil)

		standby.Exec(t, "SELECT pg_promote()")
		standby.WaitReady(t, 2*time.Minute)
		standby.Exec(t, "INSERT INTO after_standby VALUES (0)")
		if got := standby.QueryString(t, "SHOW data_checksums"); got != wantChecksums(major) {
			t.Errorf("standby data_checksums = %s, want %s", got, wantChecksums(major))
		}
		h := checkHistory(t, filepath.Join(dest, "pg_wal", "00000002.history"))
		if h.SwitchPoint < lsn || h.Reason != "no recovery target specified" {
			t.Errorf("history after promotion: switch point %s (want at least %s), reason %q", h.SwitchPoint, lsn, h.Reason)
		}
		standby.Stop(t)
	})

	step("another cluster is refused", func(t *testing.T) {
		// It archives, as backup-push requires, but into its own archive.
		other := archivingClusterOpts(t, newArchive(t), testpg.Options{Major: major})
		seg := completeSegment(t, other)
		name := filepath.Base(seg)
		before := walObjects(t, a, name)
		r := run(t, "", env(a, nil), "wal-push", seg)
		if r.Code == 0 || !strings.Contains(r.Stderr, "system identifier") || !strings.Contains(r.Stderr, "another cluster") {
			t.Fatalf("wal-push of another cluster's %s: want a refusal naming the system identifier, got %s", name, r)
		}
		if after := walObjects(t, a, name); !slices.Equal(after, before) {
			t.Errorf("refused wal-push changed wal/%s-*: %v -> %v", name, before, after)
		}
		sentinels, _ := filepath.Glob(filepath.Join(a.Path, "backups", "*.json"))
		r = run(t, "", env(a, other), "backup-push", other.DataDir)
		if r.Code == 0 || !strings.Contains(r.Stderr, "another cluster") {
			t.Fatalf("backup-push of another cluster: want a refusal, got %s", r)
		}
		if after, _ := filepath.Glob(filepath.Join(a.Path, "backups", "*.json")); !slices.Equal(after, sentinels) {
			t.Errorf("refused backup-push changed the backups: %v -> %v", sentinels, after)
		}
		other.Kill(t)
	})

	step("pg_control after a clean stop", func(t *testing.T) {
		src.Stop(t)
		stopped, err := pgcontrol.ParseControlFile(readFile(t, filepath.Join(src.DataDir, "global", "pg_control")))
		if err != nil {
			t.Fatal(err)
		}
		if stopped.State != pgcontrol.StateShutdowned || stopped.PGVersion != major {
			t.Fatalf("after a clean stop: state %q, major %d", stopped.State, stopped.PGVersion)
		}
		// A start after a clean stop writes no checkpoint: all but the
		// state and the time of pg_control's last write stay as stopped,
		// and the server can report them.
		restarted := testpg.Start(t, src.DataDir, testpg.Options{Conf: map[string]string{"archive_mode": "off"}})
		checkControlFile(t, restarted, major, pgcontrol.StateInProduction, stopped)
		restarted.Stop(t)
	})

	step("a failing archive stops recovery", func(t *testing.T) {
		dest := filepath.Join(a.Dir, "failing")
		mustRun(t, "", env(a, nil), "backup-fetch", dest, backup)
		lockWALDir(t, a)
		// wal-fetch by hand: in standby mode PostgreSQL retries a failure.
		standbyDir := testpg.SharedTempDir(t)
		if err := os.WriteFile(filepath.Join(standbyDir, "standby.signal"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := testpg.ChownToServer(standbyDir); err != nil {
			t.Fatal(err)
		}
		if r := run(t, standbyDir, env(a, nil), "wal-fetch", segName, "RECOVERYXLOG"); r.Code != 1 {
			t.Errorf("wal-fetch with a failing store in standby mode: want exit 1, got %s", r)
		}
		// In archive recovery the server must stop rather than end
		// recovery early and promote at the wrong point.
		restored, err := testpg.StartErr(t, dest, restoreOpts(a))
		if err == nil {
			t.Fatalf("restored server started although its archive fails\n%s", restored.LogTail(30))
		}
		restored.WaitStopped(t, time.Minute)
		if _, err := os.Stat(filepath.Join(dest, "recovery.signal")); err != nil {
			t.Errorf("recovery.signal is gone: the server ended recovery: %v", err)
		}
		if log := restored.LogTail(60); !strings.Contains(log, "exit code 200") {
			t.Errorf("server log does not show wal-fetch's exit code 200:\n%s", log)
		}
	})
}

// controlReport is what a server says about its own pg_control through the
// SQL functions that read it, keyed by their column names, LSNs in the
// form pgcontrol.LSN prints.
func controlReport(t *testing.T, c *testpg.Cluster) map[string]string {
	t.Helper()
	cols := []string{
		"s.pg_control_version", "s.catalog_version_no", "s.system_identifier",
		"extract(epoch FROM s.pg_control_last_modified)::bigint AS pg_control_last_modified",
		"c.checkpoint_lsn", "c.redo_lsn", "c.redo_wal_file", "c.timeline_id", "c.prev_timeline_id",
		"extract(epoch FROM c.checkpoint_time)::bigint AS checkpoint_time",
		"r.min_recovery_end_lsn", "r.min_recovery_end_timeline", "r.backup_start_lsn", "r.backup_end_lsn",
		"r.end_of_backup_record_required",
		"i.database_block_size", "i.wal_block_size", "i.bytes_per_wal_segment", "i.data_page_checksum_version",
	}
	var sel []string
	names := make([]string, len(cols))
	for i, col := range cols {
		expr, name, ok := strings.Cut(col, " AS ")
		if !ok {
			_, name, _ = strings.Cut(col, ".")
		}
		names[i] = name
		sel = append(sel, "("+expr+")::text")
	}
	q := "SELECT " + strings.Join(sel, ", ") +
		" FROM pg_control_system() s, pg_control_checkpoint() c, pg_control_recovery() r, pg_control_init() i"
	vals := make([]string, len(cols))
	dst := make([]any, len(cols))
	for i := range vals {
		dst[i] = &vals[i]
	}
	if err := c.Connect(t).QueryRow(t.Context(), q).Scan(dst...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	m := make(map[string]string, len(cols))
	for i, name := range names {
		v := vals[i]
		if strings.HasSuffix(name, "_lsn") {
			lsn, err := pgcontrol.ParseLSN(v)
			if err != nil {
				t.Fatalf("%s = %q: %v", name, v, err)
			}
			v = lsn.String()
		}
		m[name] = v
	}
	return m
}

// controlFields is cd in controlReport's terms.
func controlFields(cd *pgcontrol.ControlData) map[string]string {
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	seg := uint64(cd.WALSegmentSize)
	return map[string]string{
		"pg_control_version":            u(uint64(cd.PGControlVersion)),
		"catalog_version_no":            u(uint64(cd.CatalogVersion)),
		"system_identifier":             u(cd.SystemIdentifier),
		"pg_control_last_modified":      strconv.FormatInt(cd.Time.Unix(), 10),
		"checkpoint_lsn":                cd.CheckpointLSN.String(),
		"redo_lsn":                      cd.Redo.String(),
		"redo_wal_file":                 pgcontrol.WALFileName(cd.TimelineID, pgcontrol.SegmentNumber(cd.Redo, seg), seg),
		"timeline_id":                   u(uint64(cd.TimelineID)),
		"prev_timeline_id":              u(uint64(cd.PrevTimelineID)),
		"checkpoint_time":               strconv.FormatInt(cd.CheckpointTime.Unix(), 10),
		"min_recovery_end_lsn":          cd.MinRecoveryPoint.String(),
		"min_recovery_end_timeline":     u(uint64(cd.MinRecoveryPointTLI)),
		"backup_start_lsn":              cd.BackupStartPoint.String(),
		"backup_end_lsn":                cd.BackupEndPoint.String(),
		"end_of_backup_record_required": strconv.FormatBool(cd.BackupEndRequired),
		"database_block_size":           u(uint64(cd.BlockSize)),
		"wal_block_size":                u(uint64(cd.WALBlockSize)),
		"bytes_per_wal_segment":         u(seg),
		"data_page_checksum_version":    u(uint64(cd.DataChecksumVersion)),
	}
}

// checkControlFile parses c's global/pg_control and compares every field
// walnut reads with what the server reports, and the state (which no SQL
// function shows) with state. With stopped, it compares the pg_control
// parsed after a clean stop instead, except for the time of the last write,
// which the start that followed changed. It returns what it parsed.
func checkControlFile(t *testing.T, c *testpg.Cluster, major int, state pgcontrol.DBState, stopped *pgcontrol.ControlData) *pgcontrol.ControlData {
	t.Helper()
	path := filepath.Join(c.DataDir, "global", "pg_control")
	// The server may rewrite pg_control between our read and its; take a
	// report that falls between two identical reads.
	var b []byte
	var report map[string]string
	for attempt := 0; ; attempt++ {
		b = readFile(t, path)
		report = controlReport(t, c)
		if bytes.Equal(b, readFile(t, path)) {
			break
		}
		if attempt == 20 {
			t.Fatalf("%s kept changing while read", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cd, err := pgcontrol.ParseControlFile(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if cd.PGVersion != major {
		t.Errorf("%s: parsed as PostgreSQL %d, want %d", path, cd.PGVersion, major)
	}
	if cd.State != state {
		t.Errorf("%s: state %q, want %q", path, cd.State, state)
	}
	compared := cd
	if stopped != nil {
		compared = stopped
		if stopped.Time.After(cd.Time) {
			t.Errorf("pg_control last written at %s when stopped, %s after the start", stopped.Time, cd.Time)
		}
	}
	got := controlFields(compared)
	for name, w := range report {
		if stopped != nil && name == "pg_control_last_modified" {
			continue
		}
		if g, ok := got[name]; !ok {
			t.Errorf("no parsed field for %s", name)
		} else if g != w {
			t.Errorf("%s: parsed %s, server reports %s", name, g, w)
		}
	}
	return cd
}

// checkHistory parses a timeline history file a promotion wrote: timeline
// 2's, so one entry, for timeline 1.
func checkHistory(t *testing.T, path string) pgcontrol.HistoryEntry {
	t.Helper()
	entries, err := pgcontrol.ParseHistory(bytes.NewReader(readFile(t, path)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(entries) != 1 || entries[0].ParentTLI != 1 || entries[0].SwitchPoint == 0 {
		t.Fatalf("%s: entries %+v, want one for timeline 1", path, entries)
	}
	return entries[0]
}

// A major newer than 18 is refused before anything starts: backup-push
// says so in one line before "backup started" and without asking the
// server to start a backup, and wal-push refuses a segment whose page
// magic is newer than 18's. No PostgreSQL 19 exists to test against, so
// the server is a stand-in that speaks the protocol far enough to say
// server_version_num 190000, and the segment carries the next magic.
func TestNewerMajorRefused(t *testing.T) {
	a := newArchive(t)
	host, port, queries := fakeServer(t, "190000")
	dataDir := filepath.Join(testpg.SharedTempDir(t), "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "PG_VERSION"), []byte("19\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := testpg.ChownToServer(dataDir); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", env(a, nil, "PGHOST="+host, "PGPORT="+strconv.Itoa(port), "PGUSER=postgres", "PGSSLMODE=disable"),
		"--terse", "backup-push", dataDir)
	if r.Code == 0 || strings.Contains(r.Stderr, "backup started") {
		t.Fatalf("backup-push against PostgreSQL 19: want a refusal before the backup starts, got %s", r)
	}
	if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); len(lines) != 1 ||
		!strings.Contains(lines[0], "PostgreSQL 19 is not supported: walnut supports PostgreSQL 12 to 18") {
		t.Errorf("backup-push against PostgreSQL 19: want one line naming 19 and the range, got:\n%s", r.Stderr)
	}
	for _, q := range queries() {
		if strings.Contains(q, "backup") {
			t.Errorf("backup-push sent %q to a PostgreSQL 19 server", q)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(a.Path, "*")); len(m) != 0 {
		t.Errorf("refused backup-push wrote %v", m)
	}

	// A segment as PostgreSQL 18 starts one, with the next magic.
	segment := make([]byte, 16<<20)
	le := binary.LittleEndian
	le.PutUint16(segment[0:], 0xD119)
	le.PutUint16(segment[2:], 0x0002) // long header
	le.PutUint32(segment[4:], 1)
	le.PutUint64(segment[8:], 0x3000000)
	le.PutUint64(segment[24:], 7000000000000000019)
	le.PutUint32(segment[32:], 16<<20)
	le.PutUint32(segment[36:], 8192)
	p := writeShared(t, "000000010000000000000003", segment)
	r = run(t, "", env(a, nil), "--terse", "wal-push", p)
	if r.Code != 1 {
		t.Fatalf("wal-push of a segment from a newer major: want exit 1, got %s", r)
	}
	if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); len(lines) != 1 ||
		!strings.Contains(lines[0], "magic D119 is newer than PostgreSQL 18's (D118)") ||
		!strings.Contains(lines[0], "walnut supports PostgreSQL 12 to 18") {
		t.Errorf("wal-push of a segment from a newer major: want one line naming the range, got:\n%s", r.Stderr)
	}
	if m, _ := filepath.Glob(filepath.Join(a.Path, "*")); len(m) != 0 {
		t.Errorf("refused wal-push wrote %v", m)
	}
}

// fakeServer listens on 127.0.0.1 and answers every connection as a
// PostgreSQL server whose server_version_num is versionNum would: trust
// authentication, then every query with one row holding versionNum when it
// asks for server_version_num, else an empty result. queries returns what
// was asked so far.
func fakeServer(t *testing.T, versionNum string) (host string, port int, queries func() []string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan string, 100)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go serveFake(conn, versionNum, got)
		}
	}()
	queries = func() []string {
		var qs []string
		for {
			select {
			case q := <-got:
				qs = append(qs, q)
			default:
				return qs
			}
		}
	}
	return "127.0.0.1", l.Addr().(*net.TCPAddr).Port, queries
}

func serveFake(conn net.Conn, versionNum string, got chan<- string) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	be := pgproto3.NewBackend(conn, conn)
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		if _, ok := msg.(*pgproto3.StartupMessage); ok {
			break
		}
		// SSL or GSS encryption request: decline, the client goes on in
		// the clear.
		if _, err := conn.Write([]byte("N")); err != nil {
			return
		}
	}
	be.Send(&pgproto3.AuthenticationOk{})
	be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "19devel"})
	be.Send(&pgproto3.ParameterStatus{Name: "client_encoding", Value: "UTF8"})
	be.Send(&pgproto3.ParameterStatus{Name: "standard_conforming_strings", Value: "on"})
	be.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 1}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	versionRow := &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{
		Name: []byte("current_setting"), DataTypeOID: 23, DataTypeSize: 4, TypeModifier: -1,
	}}}
	var query string
	var binaryResult bool // the client's Bind asked for int4 in binary
	asksVersion := func() bool { return strings.Contains(query, "server_version_num") }
	result := func() {
		if asksVersion() {
			v := []byte(versionNum)
			if binaryResult {
				n, _ := strconv.Atoi(versionNum)
				v = binary.BigEndian.AppendUint32(nil, uint32(n))
			}
			be.Send(&pgproto3.DataRow{Values: [][]byte{v}})
			be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
		} else {
			be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SET")})
		}
	}
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			query, binaryResult = m.String, false
			got <- query
			if asksVersion() {
				be.Send(versionRow)
			}
			result()
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Parse:
			query = m.Query
			got <- query
			be.Send(&pgproto3.ParseComplete{})
		case *pgproto3.Describe:
			if m.ObjectType == 'S' {
				be.Send(&pgproto3.ParameterDescription{})
			}
			if asksVersion() {
				be.Send(versionRow)
			} else {
				be.Send(&pgproto3.NoData{})
			}
		case *pgproto3.Bind:
			binaryResult = len(m.ResultFormatCodes) > 0 && m.ResultFormatCodes[0] == 1
			be.Send(&pgproto3.BindComplete{})
		case *pgproto3.Execute:
			result()
		case *pgproto3.Sync:
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Terminate:
			return
		}
		if be.Flush() != nil {
			return
		}
	}
}
