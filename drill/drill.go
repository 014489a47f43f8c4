package drill

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgserver"
	"github.com/walnut-pg/walnut/storage"
)

// Options is what the restore drill needs.
type Options struct {
	Store storage.Store
	Name  string // a backup name or LATEST
	// Scratch is an empty or new directory to restore into; "" makes one
	// under the system's temp directory.
	Scratch string
	// Restore restores backup name into dataDir, its tablespaces under
	// tablespaceDir. The caller supplies it (commands calls restore.Run):
	// job packages do not import each other.
	Restore func(ctx context.Context, name, dataDir, tablespaceDir string) (RestoreStats, error)
	// BinDir holds the server binaries; "" finds the backup's version.
	BinDir string
	// User is the account the server runs as when walnut runs as root
	// and makes the scratch directory; "" is postgres. A scratch
	// directory that exists is run as by its owner.
	User string
	// Role is the database role the drill connects as; "" is the name of
	// the account the server runs as, which initdb makes the superuser.
	Role string
	// RestoreCommand fetches WAL from the archive (walnut wal-fetch with
	// this run's configuration).
	RestoreCommand string
	Env            []string    // the server's environment (restore_command inherits it)
	Settings       [][2]string // more server settings, after the drill's own
	// Query runs in each database; "" counts the rows of every user table.
	Query string
	// Databases to query; none: every database that allows connections,
	// templates aside.
	Databases    []string
	StartTimeout time.Duration // until the server is consistent and accepts connections
	Log          *slog.Logger
}

// RestoreStats is what the restore step reports.
type RestoreStats struct {
	Files int
	Bytes int64
}

// Report is what the drill found. Times are in seconds.
type Report struct {
	Backup            string     `json:"backup"`
	PGVersion         int        `json:"pg_version"`
	BinDir            string     `json:"pg_bindir,omitempty"`
	Scratch           string     `json:"scratch"`
	User              string     `json:"os_user,omitempty"`
	Files             int        `json:"files"`
	Bytes             int64      `json:"bytes"`
	RestoreSeconds    float64    `json:"restore_seconds"`
	ConsistentSeconds float64    `json:"consistent_seconds"`
	ConsistentLSN     string     `json:"consistent_lsn,omitempty"` // the backup's end, where recovery stopped
	Timeline          uint32     `json:"timeline,omitempty"`       // after promotion
	Databases         []Database `json:"databases"`
	OK                bool       `json:"ok"`
	Error             string     `json:"error,omitempty"`
	// ServerLog is the end of the server's log when the drill failed
	// after starting it.
	ServerLog string `json:"server_log,omitempty"`
	// Cleanup says the server is stopped and the scratch directory gone.
	Cleanup string `json:"cleanup"`
}

// Database is one database of the started server.
type Database struct {
	Name      string       `json:"name"`
	SizeBytes int64        `json:"size_bytes"`
	Tables    []TableRows  `json:"tables,omitempty"`
	Rows      int64        `json:"rows"` // of all its tables
	Query     *QueryResult `json:"query,omitempty"`
}

// TableRows is the row count of one table.
type TableRows struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// QueryResult is what --query returned in one database.
type QueryResult struct {
	Columns   []string   `json:"columns"`
	Rows      [][]string `json:"rows"`
	Truncated bool       `json:"truncated,omitempty"`
}

const (
	// DefaultStartTimeout bounds the wait for consistency: replay of the
	// WAL a backup wrote while it ran.
	DefaultStartTimeout = time.Hour
	stopTimeout         = time.Minute
	logTailLines        = 30
	defaultUser         = "postgres"
	// socketPathMax is what fits in sun_path with PostgreSQL's socket name.
	socketPathMax = 100
)

// Run restores a backup into a scratch directory, starts a throwaway
// server on it that recovers to the backup's consistency point and
// promotes, runs the query, stops the server and removes the scratch
// directory, on failure as on success. The report is returned either
// way; the error says why the drill failed.
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	rep = &Report{}
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("interrupted: %w", err)
		}
		rep.OK = err == nil
		if err != nil {
			rep.Error = err.Error()
		}
	}()
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if err := archive.Require(ctx, o.Store); err != nil {
		return rep, err
	}
	sn, err := archive.ResolveBackup(ctx, o.Store, o.Name)
	if err != nil {
		return rep, err
	}
	rep.Backup, rep.PGVersion, rep.ConsistentLSN = sn.Name, sn.PGVersion, sn.FinishLSN
	major := sn.PGVersion / 10000
	if rep.BinDir, err = pgserver.BinDir(major, o.BinDir); err != nil {
		return rep, err
	}

	sc, err := prepareScratch(o.Scratch, o.User)
	if err != nil {
		return rep, err
	}
	rep.Scratch, rep.User = sc.dir, sc.user.Name
	var srv *pgserver.Server
	defer func() {
		// Whatever happened, and even if walnut was told to stop: no
		// server left running, no restored copy left on disk.
		var cerr error
		if srv != nil {
			if err != nil {
				rep.ServerLog = srv.LogTail(logTailLines)
			}
			cerr = srv.Stop(stopTimeout)
		}
		if cerr == nil {
			cerr = sc.remove()
		}
		if cerr != nil {
			rep.Cleanup = "FAILED: " + cerr.Error()
			err = errors.Join(err, fmt.Errorf("clean up the drill: %w", cerr))
			return
		}
		rep.Cleanup = "server stopped, scratch directory removed"
	}()

	dataDir := filepath.Join(sc.dir, "data")
	o.Log.Info("restoring", "backup", sn.Name, "into", dataDir)
	start := time.Now()
	stats, err := o.Restore(ctx, sn.Name, dataDir, filepath.Join(sc.dir, "tablespaces"))
	rep.RestoreSeconds = time.Since(start).Seconds()
	if err != nil {
		return rep, fmt.Errorf("restore %s: %w", sn.Name, err)
	}
	rep.Files, rep.Bytes = stats.Files, stats.Bytes
	if err := prepareDataDir(dataDir, sc); err != nil {
		return rep, err
	}

	o.Log.Info("starting a throwaway server", "data", dataDir, "bindir", rep.BinDir, "user", sc.user.Name)
	start = time.Now()
	srv, err = pgserver.Start(pgserver.Options{
		BinDir:    rep.BinDir,
		DataDir:   dataDir,
		SocketDir: sc.socketDir,
		Settings:  append(drillSettings(o.RestoreCommand, major), o.Settings...),
		Env:       serverEnv(o.Env, sc.user),
		User:      sc.user,
	})
	if err != nil {
		return rep, err
	}
	role := o.Role
	if role == "" {
		role = sc.user.Name
	}
	conn, db, err := waitReady(ctx, srv, role, o.StartTimeout)
	rep.ConsistentSeconds = time.Since(start).Seconds()
	if err != nil {
		return rep, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	o.Log.Info("consistent and promoted", "seconds", rep.ConsistentSeconds)
	if rep.Timeline, err = timeline(ctx, conn); err != nil {
		return rep, err
	}
	rep.Databases, err = queryDatabases(ctx, srv, conn, db, role, o)
	return rep, err
}

// drillSettings make the server recover to the backup's consistency
// point and promote, fetching WAL with restoreCommand, and never touch
// the archive or the source's other servers. On the command line they win
// over anything restored in postgresql.conf or postgresql.auto.conf.
func drillSettings(restoreCommand string, major int) [][2]string {
	s := [][2]string{
		{"archive_mode", "off"},
		{"restore_command", restoreCommand},
		// PostgreSQL refuses two recovery targets. A target restored from
		// the source's postgresql.auto.conf is cleared first, then the
		// drill's set: command-line settings apply in order.
		{"recovery_target_time", ""},
		{"recovery_target_xid", ""},
		{"recovery_target_lsn", ""},
		{"recovery_target_name", ""},
		{"recovery_target", "immediate"},
		{"recovery_target_action", "promote"},
		// The backup's own timeline: the consistency point is on it, and a
		// newer timeline that branched off earlier would stop recovery.
		{"recovery_target_timeline", "current"},
		{"recovery_end_command", ""},
		{"archive_cleanup_command", ""},
		{"primary_conninfo", ""},
		// A delayed standby's setting applies to archive recovery too.
		{"recovery_min_apply_delay", "0"},
		// Without hot standby, connections wait for the promotion, so the
		// first one that succeeds marks the end of recovery.
		{"hot_standby", "off"},
		{"synchronous_standby_names", ""},
		// The source's memory settings may not fit the drill's host; a
		// throwaway copy needs no fsync.
		{"shared_buffers", "128MB"},
		{"huge_pages", "off"},
		{"fsync", "off"},
	}
	if major < 15 {
		// Debian points this at a directory shared by all of a version's
		// clusters, in /etc's postgresql.conf; keep the drill's apart.
		s = append(s, [2]string{"stats_temp_directory", "pg_stat_tmp"})
	}
	return s
}

// serverEnv is the server's environment: this run's, less libpq's
// variables (the server would read PGPORT, PGDATA, ...), with the account
// the server runs as.
func serverEnv(env []string, u *pgserver.User) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "PG"), k == "HOME", k == "USER", k == "LOGNAME":
			continue
		}
		out = append(out, kv)
	}
	return append(out, "HOME="+u.Home, "USER="+u.Name, "LOGNAME="+u.Name)
}

// scratch is the drill's directory and who the server runs as.
type scratch struct {
	dir       string
	created   bool // removed whole; else only emptied
	socketDir string
	ownSocket bool // socketDir lies outside dir
	user      *pgserver.User
}

// prepareScratch makes or checks the scratch directory. Run by root, the
// server runs as the owner of a given directory, or as userName (default
// postgres) for one it makes; PostgreSQL refuses to run as root.
func prepareScratch(dir, userName string) (*scratch, error) {
	sc := &scratch{}
	root := os.Geteuid() == 0
	var err error
	switch {
	case !root:
		if sc.user, err = pgserver.CurrentUser(); err != nil {
			return nil, err
		}
		if userName != "" && userName != sc.user.Name {
			return nil, fmt.Errorf("--user %s: only root can run the server as another account; this is %s", userName, sc.user.Name)
		}
	case userName != "":
		if sc.user, err = pgserver.LookupUser(userName); err != nil {
			return nil, fmt.Errorf("--user: %w", err)
		}
	}
	switch {
	case dir == "":
		if sc.dir, err = os.MkdirTemp("", "walnut-drill-"); err != nil {
			return nil, err
		}
		sc.created = true
	default:
		if sc.dir, err = filepath.Abs(dir); err != nil {
			return nil, err
		}
		entries, err := os.ReadDir(sc.dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(sc.dir, 0o700); err != nil {
				return nil, fmt.Errorf("scratch directory: %w", err)
			}
			sc.created = true
		case err != nil:
			return nil, fmt.Errorf("scratch directory: %w", err)
		case len(entries) > 0:
			return nil, fmt.Errorf("scratch directory %s is not empty: give a new or empty directory", sc.dir)
		case root:
			owner, err := pgserver.Owner(sc.dir)
			if err != nil {
				return nil, err
			}
			if owner.UID == 0 {
				return nil, fmt.Errorf("scratch directory %s belongs to root, and PostgreSQL does not run as root: chown it to the server's user (e.g. postgres)", sc.dir)
			}
			if sc.user != nil && sc.user.UID != owner.UID {
				return nil, fmt.Errorf("scratch directory %s belongs to %s, not --user %s", sc.dir, owner.Name, sc.user.Name)
			}
			sc.user = owner
		}
	}
	if sc.user == nil {
		if sc.user, err = pgserver.LookupUser(defaultUser); err != nil {
			sc.remove()
			return nil, fmt.Errorf("the drill runs the server as %s when walnut runs as root: %w; give --user", defaultUser, err)
		}
	}
	if err := sc.setup(root); err != nil {
		sc.remove()
		return nil, err
	}
	return sc, nil
}

func (sc *scratch) setup(root bool) error {
	if err := os.Chmod(sc.dir, 0o700); err != nil {
		return err
	}
	if root {
		if err := os.Chown(sc.dir, int(sc.user.UID), int(sc.user.GID)); err != nil {
			return err
		}
		if err := reachable(sc.dir, sc.user); err != nil {
			return err
		}
	}
	sc.socketDir = filepath.Join(sc.dir, "run")
	if len(sc.socketDir)+len("/.s.PGSQL.65535") > socketPathMax {
		// A socket's path must fit in sun_path.
		d, err := os.MkdirTemp("", "walnut-drill-run-")
		if err != nil {
			return err
		}
		sc.socketDir, sc.ownSocket = d, true
	} else if err := os.Mkdir(sc.socketDir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(sc.socketDir, 0o700); err != nil {
		return err
	}
	if root {
		return os.Chown(sc.socketDir, int(sc.user.UID), int(sc.user.GID))
	}
	return nil
}

// reachable checks that u can reach dir: the server changes into its data
// directory, below dir.
func reachable(dir string, u *pgserver.User) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		m := fi.Mode().Perm()
		if ok && !(m&0o001 != 0 || st.Uid == u.UID && m&0o100 != 0 || st.Gid == u.GID && m&0o010 != 0) {
			return fmt.Errorf("the server's user %s cannot reach %s (mode %04o of %s): choose a scratch directory it can reach", u.Name, dir, m, d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// remove deletes what the drill wrote: the whole directory if it made
// it, else its contents.
func (sc *scratch) remove() error {
	var errs []error
	if sc.ownSocket {
		errs = append(errs, os.RemoveAll(sc.socketDir))
	}
	if sc.created {
		errs = append(errs, os.RemoveAll(sc.dir))
	} else if entries, err := os.ReadDir(sc.dir); err == nil {
		for _, e := range entries {
			errs = append(errs, os.RemoveAll(filepath.Join(sc.dir, e.Name())))
		}
	} else {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// prepareDataDir readies the restored directory for the server: its
// user's, with a postgresql.conf (Debian keeps it in /etc, so backups of
// Debian clusters have none) and recovery.signal.
func prepareDataDir(dataDir string, sc *scratch) error {
	conf := filepath.Join(dataDir, "postgresql.conf")
	if _, err := os.Stat(conf); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(conf, []byte("# written by walnut backup-verify --restore: the backup held no postgresql.conf\n"), 0o600); err != nil {
			return err
		}
	}
	if err := os.Remove(filepath.Join(dataDir, "standby.signal")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.WriteFile(filepath.Join(dataDir, "recovery.signal"), nil, 0o600); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return nil
	}
	// Restored by root: the server's user must own every file.
	return filepath.WalkDir(sc.dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(sc.user.UID), int(sc.user.GID))
	})
}
