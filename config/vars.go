package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/walnut-pg/walnut/config/size"
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
	{Name: "WALNUT_PARTITION_SIZE", Usage: "uncompressed bytes per backup tar partition, e.g. 512MiB (default 1GiB)"},
	{Name: "WALNUT_CHUNK_SIZE", Usage: "backup-push stores files larger than this in chunks of this size, which every worker packs and backup-fetch writes in place in parallel; at least 1MiB (default 64MiB)"},
	{Name: "WALNUT_DELTA_MAX_STEPS", Usage: "backup-push --delta: deltas a chain may hold before the next backup is full (default 6, at least 1)"},
	{Name: "WALNUT_PGP_PUBLIC_KEY_FILE", Usage: "OpenPGP public key file (armored or binary; several keys: each one can decrypt): encrypt new objects to it"},
	{Name: "WALNUT_PGP_PUBLIC_KEY", Usage: "the public key armored in the variable itself, instead of a file"},
	{Name: "WALNUT_PGP_PRIVATE_KEY_FILE", Usage: "OpenPGP private key file that decrypts; may hold old keys beside the new after a rotation (WAL-G's WALG_PGP_KEY_PATH accepted)"},
	{Name: "WALNUT_PGP_PRIVATE_KEY", Usage: "the private key armored in the variable itself (WAL-G's WALG_PGP_KEY accepted); with no public key set, new objects are encrypted to its first key"},
	{Name: "WALNUT_PGP_PASSPHRASE_FILE", Usage: "file whose first line unlocks the private key"},
	{Name: "WALNUT_PGP_PASSPHRASE", Usage: "the passphrase in the variable itself (WAL-G's WALG_PGP_KEY_PASSPHRASE accepted)"},
	{Name: "WALE_GPG_KEY_ID", Usage: "WAL-E's gpg key (--gpg-key-id): encrypt new objects to it, its public key taken from gpg's keyring (gpg --export, GNUPGHOME honoured); with a public key setting too, to both"},
	{Name: "WALNUT_WAL_PUSH_POOL_SIZE", Usage: "files wal-push stores at once: the one asked for and the next ready ones (default 4; 1 turns pooling off)"},
	{Name: "GNUPGHOME", Usage: "gpg's home (default ~/.gnupg): WAL-E's gpg-encrypted objects are decrypted by running gpg --decrypt when no walnut private key opens them"},
	{Name: "WALNUT_PREFETCH", Usage: "segments wal-fetch fetches ahead in the background into pg_wal/.walnut/prefetch (default 8; 0 turns it off)"},
	{Name: "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY", Usage: "s3://: keys (also AWS_SESSION_TOKEN); unset: shared credentials file (AWS_PROFILE), web identity, instance role"},
	{Name: "AWS_INSTANCE_PROFILE", Usage: "s3://: WAL-E's (--aws-instance-profile): 1 or true checks that nothing but the instance role can supply credentials"},
	{Name: "AWS_REGION", Aliases: []string{"AWS_DEFAULT_REGION"}, Usage: "s3://: the bucket's region (unset: asked from the server)"},
	{Name: "AWS_ENDPOINT_URL", Aliases: []string{"AWS_ENDPOINT_URL_S3", "WALE_S3_ENDPOINT"}, Usage: "s3://: S3-compatible server such as MinIO or Ceph RGW, http(s)://host:port (WAL-E: https+path://host:port)"},
	{Name: "WALNUT_S3_FORCE_PATH_STYLE", Aliases: []string{"AWS_S3_FORCE_PATH_STYLE"}, Usage: "s3://: true for path-style bucket addressing (MinIO, Ceph RGW)"},
	{Name: "WALNUT_S3_SSE, WALNUT_S3_SSE_KMS_ID", Usage: "s3://: server-side encryption, AES256 or aws:kms (with the KMS key ID)"},
	{Name: "WALNUT_S3_STORAGE_CLASS", Usage: "s3://: storage class of new objects, e.g. STANDARD_IA"},
	{Name: "WALNUT_S3_CA_CERT_FILE", Aliases: []string{"AWS_CA_BUNDLE"}, Usage: "s3://: PEM file of extra CAs to trust"},
	{Name: "WALNUT_S3_PART_SIZE", Usage: "s3://: bytes per multipart part, e.g. 32MiB (default 16MiB, at least 5MiB)"},
	{Name: "WALNUT_S3_STALL_TIMEOUT", Usage: "s3://: cut a connection that moves no data for this long (default 60s)"},
	{Name: "AZURE_STORAGE_ACCOUNT", Aliases: []string{"WABS_ACCOUNT_NAME"}, Usage: "azure://: storage account"},
	{Name: "AZURE_STORAGE_KEY", Aliases: []string{"AZURE_STORAGE_ACCESS_KEY", "WABS_ACCESS_KEY"}, Usage: "azure://: account key (wins over a SAS token)"},
	{Name: "AZURE_STORAGE_SAS_TOKEN", Aliases: []string{"WABS_SAS_TOKEN"}, Usage: "azure://: shared access signature"},
	{Name: "AZURE_STORAGE_CONNECTION_STRING", Usage: "azure://: connection string; wins over the three above"},
	{Name: "AZURE_STORAGE_ENDPOINT", Aliases: []string{"WALNUT_AZURE_ENDPOINT"}, Usage: "azure://: blob service URL, e.g. http://127.0.0.1:10000/devstoreaccount1 for Azurite"},
	{Name: "SWIFT_AUTHURL, SWIFT_USER, SWIFT_PASSWORD, SWIFT_TENANT", Usage: "swift://: WAL-E's names (also SWIFT_REGION, SWIFT_ENDPOINT_TYPE, SWIFT_AUTH_VERSION, SWIFT_*_DOMAIN_NAME); without SWIFT_AUTHURL, an openrc's OS_* names"},
	{Name: "WALNUT_SWIFT_SEGMENT_SIZE", Usage: "swift://: bytes per large-object segment, e.g. 1GiB (default: the cluster's max_file_size)"},
	{Name: "GOOGLE_APPLICATION_CREDENTIALS", Usage: "gs://: service account key file (unset: default credentials)"},
	{Name: "STORAGE_EMULATOR_HOST", Usage: "gs://: host:port of a GCS emulator, used without authentication"},
	{Name: "WALNUT_PG_BINDIR", Usage: "backup-verify --restore: directory of the backup's PostgreSQL server binaries (default: found by the backup's version, e.g. /usr/lib/postgresql/15/bin, or pg_config --bindir)"},
	{Name: "WALNUT_LOG_LEVEL", Usage: "debug, info (default), warn or error"},
	{Name: "WALNUT_STATUS_MAX_BACKUP_AGE", Usage: "status: [WARN,]CRIT age of the newest backup, e.g. 25h,26h, or off (default 26h)"},
	{Name: "WALNUT_STATUS_MAX_ARCHIVE_LAG", Usage: "status: [WARN,]CRIT complete WAL segments not yet archived, e.g. 4,16, or off (default off)"},
	{Name: "WALNUT_STATUS_MAX_ARCHIVE_FAILURE_AGE", Usage: "status: [WARN,]CRIT time archive_command has been failing, or off (default 0s,5m: warn at once)"},
	{Name: "WALNUT_STATUS_MAX_REPLICATION_LAG", Usage: "status: [WARN,]CRIT replay lag of the standby furthest behind, in bytes (64MB) or time (30s,5m), or off (default off)"},
	{Name: "PGHOST, PGPORT, PGUSER, ...", Usage: "libpq variables (also PGDATABASE, PGPASSWORD, PGPASSFILE, PGSSLMODE) for the server sessions of backup-push, check and status"},
}

// Prefix returns the archive prefix URL and the variable that set it.
func (e *Env) Prefix() (prefix, from string, err error) {
	names := append([]string{Vars[0].Name}, Vars[0].Aliases...)
	prefix, from = e.First(names...)
	if prefix == "" {
		return "", "", fmt.Errorf("no archive prefix: set WALNUT_PREFIX (for example file:///var/lib/walnut) or pass --prefix")
	}
	if err := CheckPrefixScheme(from, prefix); err != nil {
		return "", "", err
	}
	return prefix, from, nil
}

// PrefixSchemes are the URL schemes each of WAL-E's prefix variables may
// name. A WALE_S3_PREFIX that is not s3:// is a mistake to report, not a
// store to open.
var PrefixSchemes = map[string][]string{
	"WALE_S3_PREFIX":    {"s3"},
	"WALE_WABS_PREFIX":  {"wabs", "azure"},
	"WALE_SWIFT_PREFIX": {"swift"},
	"WALE_GS_PREFIX":    {"gs"},
	"WALE_FILE_PREFIX":  {"file"},
}

// CheckPrefixScheme fails when prefix, set by the variable (or flag) named
// setting, has a scheme PrefixSchemes does not allow for it. A setting
// PrefixSchemes does not list may name any scheme.
func CheckPrefixScheme(setting, prefix string) error {
	want, ok := PrefixSchemes[setting]
	if !ok {
		return nil
	}
	scheme, _, _ := strings.Cut(prefix, "://")
	for _, w := range want {
		if strings.EqualFold(scheme, w) {
			return nil
		}
	}
	return fmt.Errorf("%s=%q: want a URL starting %s://", setting, prefix, strings.Join(want, ":// or "))
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

// Size returns name parsed as a positive number of bytes, with an optional
// unit (config/size: "1073741824", "8MB", "64MiB"), or def when unset.
func (e *Env) Size(name string, def int64) (int64, error) {
	v, ok := e.Get(name)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return def, nil
	}
	n, err := size.Parse(v)
	if err == nil && n < 1 {
		err = errors.New("want at least 1 byte")
	}
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", name, v, err)
	}
	return n, nil
}

// ByteRate returns name parsed as bytes per second, a size as Size takes
// it with an optional "/s", e.g. "1048576", "50MB", "20MiB/s" or "1.5G";
// 0 when unset.
func (e *Env) ByteRate(name string) (int64, error) {
	v, ok := e.Get(name)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return 0, nil
	}
	n, err := size.Parse(strings.TrimSuffix(strings.ToLower(v), "/s"))
	switch {
	case errors.Is(err, size.ErrSyntax):
		return 0, fmt.Errorf("%s=%q: want bytes per second, e.g. 52428800, 50MB or 50MiB/s (kB, MB, GB: powers of 1000; KiB, MiB, GiB: of 1024)", name, v)
	case err != nil:
		return 0, fmt.Errorf("%s=%q: %w", name, v, err)
	case n < 1:
		return 0, fmt.Errorf("%s=%q: want at least 1 byte per second", name, v)
	}
	return n, nil
}
