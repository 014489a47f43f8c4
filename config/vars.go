package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Var documents one variable walnut reads; the help text is built from
// this table so the two cannot drift apart.
type Var struct {
	Name    string
	Aliases []string
	Usage   string
}

// Vars lists every variable walnut reads, in the order help shows them.
var Vars = []Var{
	{Name: "WALNUT_PREFIX", Aliases: []string{"WALE_FILE_PREFIX", "WALE_S3_PREFIX", "WALE_WABS_PREFIX", "WALE_SWIFT_PREFIX", "WALE_GS_PREFIX"}, Usage: "archive location, e.g. file:///var/lib/walnut"},
	{Name: "WALNUT_COMPRESSION", Usage: "codec[:level] for new objects: zstd (default), lz4, s2, snappy, gzip, none"},
	{Name: "WALNUT_UPLOAD_CONCURRENCY", Usage: "partitions compressed and uploaded at once by backup-push (default 2)"},
	{Name: "WALNUT_DOWNLOAD_CONCURRENCY", Usage: "partitions fetched and extracted at once by backup-fetch (default 2)"},
	{Name: "WALNUT_PARTITION_SIZE", Usage: "uncompressed bytes per backup tar partition (default 1073741824)"},
	{Name: "WALNUT_PGP_PUBLIC_KEY_FILE", Usage: "OpenPGP public key file (armored or binary; several keys: each one can decrypt): encrypt new objects to it"},
	{Name: "WALNUT_PGP_PUBLIC_KEY", Usage: "the public key armored in the variable itself, instead of a file"},
	{Name: "WALNUT_PGP_PRIVATE_KEY_FILE", Usage: "OpenPGP private key file that decrypts; may hold old keys beside the new after a rotation (WAL-G's WALG_PGP_KEY_PATH accepted)"},
	{Name: "WALNUT_PGP_PRIVATE_KEY", Usage: "the private key armored in the variable itself (WAL-G's WALG_PGP_KEY accepted); with no public key set, new objects are encrypted to its first key"},
	{Name: "WALNUT_PGP_PASSPHRASE_FILE", Usage: "file whose first line unlocks the private key"},
	{Name: "WALNUT_PGP_PASSPHRASE", Usage: "the passphrase in the variable itself (WAL-G's WALG_PGP_KEY_PASSPHRASE accepted)"},
	{Name: "WALNUT_WAL_PUSH_POOL_SIZE", Usage: "files wal-push stores at once: the one asked for and the next ready ones (default 4; 1 turns pooling off)"},
	{Name: "WALNUT_PREFETCH", Usage: "segments wal-fetch fetches ahead in the background into pg_wal/.walnut/prefetch (default 8; 0 turns it off)"},
	{Name: "WALNUT_LOG_LEVEL", Usage: "debug, info (default), warn or error"},
	{Name: "PGHOST, PGPORT, PGUSER, ...", Usage: "libpq variables (also PGDATABASE, PGPASSWORD, PGPASSFILE, PGSSLMODE) for backup-push's session"},
}

// Prefix returns the archive prefix URL and the variable that set it.
func (e *Env) Prefix() (prefix, from string, err error) {
	names := append([]string{Vars[0].Name}, Vars[0].Aliases...)
	prefix, from = e.First(names...)
	if prefix == "" {
		return "", "", fmt.Errorf("no archive prefix: set WALNUT_PREFIX (for example file:///var/lib/walnut) or pass --prefix")
	}
	return prefix, from, nil
}

// Count returns name parsed as an integer of zero or more, or def when
// unset.
func (e *Env) Count(name string, def int64) (int64, error) {
	v, ok := e.Get(name)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want an integer of 0 or more", name, v)
	}
	return n, nil
}

// FromFile reports whether name was set by --envdir or --env-file (or a
// flag) rather than the process environment.
func (e *Env) FromFile(name string) bool {
	_, ok := e.files[name]
	return ok
}

// Int returns name parsed as a positive integer, or def when unset.
func (e *Env) Int(name string, def int64) (int64, error) {
	v, ok := e.Get(name)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", name, v)
	}
	return n, nil
}
