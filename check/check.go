// Package check is walnut check: on the database host, it proves that the
// store works, that the server archives into this archive with walnut,
// and that the archive is this cluster's, one line per fact with what to
// do when it is not so. It writes only a probe object (removed again)
// and the WAL switch the round trip needs.
package check

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/walnut-pg/walnut/storage"
)

// Status is the verdict of one check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "FAIL"
)

// Result is one check.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Fix says what to do, when the status is not ok.
	Fix string `json:"fix,omitempty"`
}

// Failed reports whether any result failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// ArchiveCommand is what the server's archive_command does, read as a
// walnut command line by the caller (commands/ owns walnut's flags and
// configuration files).
type ArchiveCommand struct {
	// Walnut is set when it runs walnut wal-push with %p.
	Walnut     bool
	Executable string
	// Prefix is the archive it stores into, "" when that cannot be told
	// (From says why); From says where the prefix came from.
	Prefix string
	From   string
	// Problem says why it is not a working walnut wal-push.
	Problem string
	// Envdir and EnvFile are the configuration it reads, for the check
	// of secrets' permissions.
	Envdir, EnvFile string
}

// SecretFile is a file or envdir that holds secrets.
type SecretFile struct {
	Setting string // what names it, e.g. WALNUT_PGP_PRIVATE_KEY_FILE or --envdir
	Path    string
	Dir     bool // an envdir: the directory and every file in it
}

// Options is what walnut check needs.
type Options struct {
	Store  storage.Store
	Prefix string // the archive's URL, as configured for this run
	// DataDir is the data directory given on the command line; "" uses the
	// connected server's.
	DataDir    string
	ConnString string // libpq keyword/value string; holds the password, never log it
	// Timeout bounds the archive round trip, and the store probe.
	Timeout time.Duration
	// ArchiveCommand reads archive_command; serverEnv is the postmaster's
	// environment, nil when it cannot be read.
	ArchiveCommand func(command string, serverEnv []string) ArchiveCommand
	// Suggested is the archive_command to propose.
	Suggested string
	Secrets   []SecretFile
	Log       *slog.Logger
}

// DefaultTimeout is how long the round trip waits for the switched segment.
const DefaultTimeout = 60 * time.Second

// Run runs every check, in an order where each one can use what the ones
// before learned, and returns them all.
func Run(ctx context.Context, o Options) []Result {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	c := &checker{o: o}
	storeOK := c.checkStore(ctx)
	c.connect(ctx)
	if c.srv != nil {
		defer c.srv.conn.Close(context.WithoutCancel(ctx))
		c.checkSettings()
	}
	c.roundTrip(ctx, storeOK)
	c.checkArchiver(ctx)
	c.checkIdentity(ctx, storeOK)
	c.checkSecrets()
	return c.results
}

// checker is one walnut check run.
type checker struct {
	o       Options
	results []Result
	srv     *server // nil: no connection
	archCmd *ArchiveCommand
}

func (c *checker) add(name string, st Status, detail, fix string) {
	c.results = append(c.results, Result{Name: name, Status: st, Detail: detail, Fix: fix})
}

// samePrefix compares archive URLs as walnut reads them: the scheme in
// any case, WAL-E's wabs:// as azure://, a trailing slash or not.
func samePrefix(a, b string) bool {
	return normalizePrefix(a) == normalizePrefix(b)
}

func normalizePrefix(p string) string {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(p), "://")
	if !ok {
		return strings.TrimRight(p, "/")
	}
	scheme = strings.ToLower(scheme)
	if scheme == "wabs" {
		scheme = "azure"
	}
	return scheme + "://" + strings.TrimRight(rest, "/")
}
