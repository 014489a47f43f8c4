package config

import (
	"fmt"
	"math"
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
	{Name: "WALNUT_RATE_LIMIT", Usage: "bytes per second backup-push may store and backup-fetch may fetch, all workers together, e.g. 50MB or 20MiB (default: no limit)"},
	{Name: "WALNUT_PARTITION_SIZE", Usage: "uncompressed bytes per backup tar partition (default 1073741824)"},
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

// byteUnits are the suffixes ByteRate accepts: SI for kB/MB/GB (as disks
// and networks are sold), binary for KiB/MiB/GiB; a bare k/M/G is SI.
var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

// ByteRate returns name parsed as bytes per second, e.g. "1048576",
// "50MB", "20MiB/s" or "1.5G"; 0 when unset.
func (e *Env) ByteRate(name string) (int64, error) {
	v, ok := e.Get(name)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return 0, nil
	}
	n, err := parseByteRate(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", name, v, err)
	}
	return n, nil
}

func parseByteRate(v string) (int64, error) {
	s := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(v)), "/s")
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	mult, ok := byteUnits[unit]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || num == "" {
		return 0, fmt.Errorf("want bytes per second, e.g. 52428800, 50MB or 50MiB")
	}
	n := f * mult
	if n < 1 || n > math.MaxInt64/2 {
		return 0, fmt.Errorf("want at least 1 byte per second")
	}
	return int64(n), nil
}
