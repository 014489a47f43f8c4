package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/storage"
)

// server is the connected server and what it says of itself.
type server struct {
	conn           *pgx.Conn
	version        int
	dataDir        string
	sysid          uint64
	archiveMode    string
	walLevel       string
	archiveCommand string
	archiveLibrary string
	segSize        uint64
	inRecovery     bool
}

func (c *checker) connect(ctx context.Context) {
	fix := "set PGHOST, PGPORT, PGUSER (a superuser, or a role with pg_read_all_settings and EXECUTE on pg_switch_wal) as for backup-push"
	cfg, err := pgx.ParseConfig(c.o.ConnString)
	if err != nil {
		c.add("server", Fail, fmt.Sprintf("connection settings (PG* variables): %v", err), fix)
		return
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		c.add("server", Fail, fmt.Sprintf("connect to PostgreSQL: %v", err), fix)
		return
	}
	s := &server{conn: conn}
	var sysid string
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('data_directory'),
		(SELECT system_identifier FROM pg_control_system())::text,
		current_setting('archive_mode'), current_setting('wal_level'), current_setting('archive_command'),
		coalesce(current_setting('archive_library', true), ''),
		(SELECT setting FROM pg_settings WHERE name = 'wal_segment_size')::bigint,
		pg_is_in_recovery()`).Scan(&s.version, &s.dataDir, &sysid, &s.archiveMode, &s.walLevel,
		&s.archiveCommand, &s.archiveLibrary, &s.segSize, &s.inRecovery)
	if err == nil {
		s.sysid, err = strconv.ParseUint(sysid, 10, 64)
	}
	if err != nil {
		conn.Close(ctx)
		c.add("server", Fail, fmt.Sprintf("query the server's settings: %v", err), fix)
		return
	}
	c.srv = s
	role := "primary"
	if s.inRecovery {
		role = "standby"
	}
	detail := fmt.Sprintf("PostgreSQL %d.%d %s, data directory %s, system identifier %d", s.version/10000, s.version%100, role, s.dataDir, s.sysid)
	if c.o.DataDir != "" {
		a, err1 := filepath.EvalSymlinks(c.o.DataDir)
		b, err2 := filepath.EvalSymlinks(s.dataDir)
		if err1 != nil || err2 != nil || a != b {
			c.add("server", Fail, fmt.Sprintf("%s; not the data directory given, %s", detail, c.o.DataDir),
				"point PGHOST/PGPORT at the server of that data directory, or give its own")
			return
		}
	}
	c.add("server", OK, detail, "")
}

func (c *checker) checkSettings() {
	s := c.srv
	switch s.archiveMode {
	case "on", "always":
		if s.inRecovery && s.archiveMode == "on" {
			c.add("archive_mode", Warn, "on, but this server is a standby: it archives nothing until promoted", "run walnut check on the primary; archive_mode = always makes a standby archive too")
		} else {
			c.add("archive_mode", OK, s.archiveMode, "")
		}
	default:
		c.add("archive_mode", Fail, s.archiveMode+": the server archives no WAL, and no backup can be restored", "set archive_mode = on and restart PostgreSQL")
	}
	switch s.walLevel {
	case "replica", "logical":
		c.add("wal_level", OK, s.walLevel, "")
	default:
		c.add("wal_level", Fail, s.walLevel+": WAL at this level cannot restore a base backup", "set wal_level = replica and restart PostgreSQL")
	}
	fix := "set archive_command = '" + strings.ReplaceAll(c.o.Suggested, "'", "''") + "' and reload PostgreSQL (SELECT pg_reload_conf())"
	if s.archiveLibrary != "" {
		c.add("archive_command", Fail, fmt.Sprintf("archive_library = %q is set: PostgreSQL ignores archive_command", s.archiveLibrary), "set archive_library = '' and "+fix)
		return
	}
	if strings.TrimSpace(s.archiveCommand) == "" || s.archiveCommand == "(disabled)" {
		c.add("archive_command", Fail, "empty: the server archives nothing", fix)
		return
	}
	ac := c.o.ArchiveCommand(s.archiveCommand, c.postmasterEnv())
	c.archCmd = &ac
	switch {
	case !ac.Walnut:
		c.add("archive_command", Fail, fmt.Sprintf("%q: %s", s.archiveCommand, ac.Problem), fix)
	case ac.Prefix == "":
		c.add("archive_command", Warn, fmt.Sprintf("%q runs walnut wal-push, but its prefix cannot be told: %s", s.archiveCommand, ac.From),
			"the round trip below shows whether it archives here; giving --envdir or --prefix in archive_command makes it checkable")
	case !samePrefix(ac.Prefix, c.o.Prefix):
		c.add("archive_command", Fail, fmt.Sprintf("%q archives to %s (%s), not to this archive, %s", s.archiveCommand, ac.Prefix, ac.From, c.o.Prefix), fix)
	default:
		c.add("archive_command", OK, fmt.Sprintf("%q: walnut wal-push into %s (%s)", s.archiveCommand, ac.Prefix, ac.From), "")
	}
}

// postmasterEnv is the running server's environment, which
// archive_command inherits, or nil when it cannot be read (another user's
// process, or no /proc).
func (c *checker) postmasterEnv() []string {
	b, err := os.ReadFile(filepath.Join(c.srv.dataDir, "postmaster.pid"))
	if err != nil {
		return nil
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return nil
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil
	}
	var out []string
	for _, kv := range strings.Split(string(env), "\x00") {
		if kv != "" {
			out = append(out, kv)
		}
	}
	return out
}

// roundTrip writes a WAL record, switches to a new segment, and waits
// for the segment it closed to reach this archive: the one proof that
// archiving works end to end, whatever archive_command looks like.
func (c *checker) roundTrip(ctx context.Context, storeOK bool) {
	const name = "round trip"
	switch {
	case c.srv == nil:
		c.add(name, Fail, "not checked: no connection to the server", "fix the connection first")
		return
	case !storeOK:
		c.add(name, Fail, "not checked: the store does not work", "fix the store first")
		return
	case c.srv.inRecovery:
		c.add(name, Warn, "not checked: a standby cannot switch WAL segments", "run walnut check on the primary")
		return
	}
	conn := c.srv.conn
	// A switch with nothing written since the last one closes nothing
	// new: an assigned transaction ID makes the commit write a record.
	if _, err := conn.Exec(ctx, "SELECT txid_current()"); err != nil {
		c.add(name, Fail, fmt.Sprintf("write a WAL record: %v", err), "")
		return
	}
	var seg string
	if err := conn.QueryRow(ctx, "SELECT pg_walfile_name(pg_switch_wal())").Scan(&seg); err != nil {
		c.add(name, Fail, fmt.Sprintf("pg_switch_wal(): %v", err), "run walnut check as a superuser, or GRANT EXECUTE ON FUNCTION pg_switch_wal() TO the role")
		return
	}
	start := time.Now()
	deadline := start.Add(c.o.Timeout)
	delay := 100 * time.Millisecond
	for {
		obj, err := archive.FindWAL(ctx, c.o.Store, seg)
		switch {
		case err == nil:
			c.add(name, OK, fmt.Sprintf("pg_switch_wal() closed %s; it reached the archive in %s as %s", seg, time.Since(start).Round(100*time.Millisecond), obj.Key), "")
			return
		case !errors.Is(err, storage.ErrNotFound):
			c.add(name, Fail, fmt.Sprintf("look for %s in the archive: %v", seg, err), "")
			return
		case time.Now().After(deadline):
			detail := fmt.Sprintf("pg_switch_wal() closed %s; it did not reach %s within %s", seg, c.o.Prefix, c.o.Timeout)
			if st, err := c.archiverStats(ctx); err == nil {
				switch {
				case st.failing():
					detail += fmt.Sprintf("; archive_command last failed on %s at %s", st.lastFailedWAL, st.lastFailed.Format(time.RFC3339))
				case len(st.lastArchivedWAL) >= len(seg) && st.lastArchivedWAL[:len(seg)] >= seg:
					detail += "; the server reports it archived, so archive_command stored it somewhere else"
				}
			}
			c.add(name, Fail, detail, "check archive_command and the server log (the archiver logs why archive_command failed); give --timeout for a slow store")
			return
		}
		select {
		case <-ctx.Done():
			c.add(name, Fail, fmt.Sprintf("waiting for %s: %v", seg, ctx.Err()), "")
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

type archiverStats struct {
	archived, failed             int64
	lastArchivedWAL              string
	lastFailedWAL                string
	lastArchived, lastFailed     time.Time
	haveArchived, haveLastFailed bool
}

func (s archiverStats) failing() bool {
	return s.haveLastFailed && (!s.haveArchived || s.lastFailed.After(s.lastArchived))
}

func (c *checker) archiverStats(ctx context.Context) (archiverStats, error) {
	var st archiverStats
	var lastArchived, lastFailed *time.Time
	var archivedWAL, failedWAL *string
	err := c.srv.conn.QueryRow(ctx, `SELECT archived_count, last_archived_wal, last_archived_time,
		failed_count, last_failed_wal, last_failed_time FROM pg_stat_archiver`).Scan(
		&st.archived, &archivedWAL, &lastArchived, &st.failed, &failedWAL, &lastFailed)
	if err != nil {
		return st, err
	}
	if lastArchived != nil {
		st.lastArchived, st.haveArchived = *lastArchived, true
	}
	if lastFailed != nil {
		st.lastFailed, st.haveLastFailed = *lastFailed, true
	}
	if archivedWAL != nil {
		st.lastArchivedWAL = *archivedWAL
	}
	if failedWAL != nil {
		st.lastFailedWAL = *failedWAL
	}
	return st, nil
}

// backlogWarn is how many segments may wait for the archiver before check
// warns that archiving falls behind.
const backlogWarn = 16

func (c *checker) checkArchiver(ctx context.Context) {
	const name = "archiver"
	if c.srv == nil {
		c.add(name, Fail, "not checked: no connection to the server", "fix the connection first")
		return
	}
	st, err := c.archiverStats(ctx)
	if err != nil {
		c.add(name, Fail, fmt.Sprintf("read pg_stat_archiver: %v", err), "")
		return
	}
	detail := fmt.Sprintf("%d archived, %d failed", st.archived, st.failed)
	if st.haveArchived {
		detail += fmt.Sprintf("; last archived %s at %s", st.lastArchivedWAL, st.lastArchived.Format(time.RFC3339))
	}
	if st.haveLastFailed {
		detail += fmt.Sprintf("; last failure %s at %s", st.lastFailedWAL, st.lastFailed.Format(time.RFC3339))
	}
	ready := c.readyCount()
	if ready >= 0 {
		detail += fmt.Sprintf("; %d waiting", ready)
	}
	switch {
	case st.failing():
		c.add(name, Fail, detail+": archiving fails now", "read the server log for archive_command's error; until it archives, pg_wal grows and nothing written since can be restored")
	case ready >= backlogWarn:
		c.add(name, Warn, detail+": archiving falls behind", "raise wal-push --pool-size (WALNUT_WAL_PUSH_POOL_SIZE), or check the store's latency")
	default:
		c.add(name, OK, detail, "")
	}
}

// readyCount counts the files waiting for the archiver, or -1 when the
// data directory cannot be read from here.
func (c *checker) readyCount() int {
	entries, err := os.ReadDir(filepath.Join(c.srv.dataDir, "pg_wal", "archive_status"))
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".ready") {
			n++
		}
	}
	return n
}

func (c *checker) checkIdentity(ctx context.Context, storeOK bool) {
	name := archive.IdentityKey
	if !storeOK {
		c.add(name, Fail, "not checked: the store does not work", "fix the store first")
		return
	}
	id, err := archive.ReadIdentity(ctx, c.o.Store)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		c.add(name, Fail, "missing: nothing was ever archived under "+c.o.Prefix, "make archiving work (archive_command, the round trip); the first wal-push writes it")
		return
	case err != nil:
		c.add(name, Fail, err.Error(), "")
		return
	case c.srv == nil:
		c.add(name, Warn, fmt.Sprintf("archive of system identifier %s; not compared: no connection to the server", id.SystemIdentifier), "fix the connection first")
		return
	}
	want := strconv.FormatUint(c.srv.sysid, 10)
	switch {
	case id.SystemIdentifier != want:
		c.add(name, Fail, fmt.Sprintf("the archive belongs to the cluster with system identifier %s, this server's is %s", id.SystemIdentifier, want),
			"give this cluster its own prefix (a restored or upgraded cluster is a new one)")
	case id.WALSegmentSize != 0 && id.WALSegmentSize != c.srv.segSize:
		c.add(name, Fail, fmt.Sprintf("the archive's WAL segments are %d bytes, this server's %d", id.WALSegmentSize, c.srv.segSize), "give this cluster its own prefix")
	default:
		detail := "system identifier " + want
		if id.PGVersion != 0 {
			detail += fmt.Sprintf(", PostgreSQL %d", id.PGVersion)
		}
		c.add(name, OK, detail+": this cluster's archive", "")
	}
}
