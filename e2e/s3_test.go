package e2e

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/internal/testserver"
)

// s3Bucket is the bucket every MinIO test server gets.
const s3Bucket = "walnut"

// startMinIO starts a MinIO server with the test bucket.
func startMinIO(t *testing.T) *testserver.MinIOServer {
	m := testserver.MinIO(t)
	m.CreateBucket(t, s3Bucket)
	return m
}

var nonKeyChars = regexp.MustCompile(`[^a-z0-9]+`)

// newS3Archive is an archive under a prefix named for the test in MinIO's
// bucket, reached through endpoint (a proxy) or, if empty, directly. Its
// settings go both into Env and into an envdir (writeEnvdir) holding
// WALNUT_PREFIX too.
func newS3Archive(t *testing.T, m *testserver.MinIOServer, endpoint string, extra ...string) *archive {
	dir := testpg.SharedTempDir(t)
	a := &archive{
		Dir:    dir,
		Prefix: "s3://" + s3Bucket + "/" + strings.Trim(nonKeyChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-"),
		Env:    append(m.Env(endpoint), extra...),
	}
	a.Envdir = writeEnvdir(t, append([]string{"WALNUT_PREFIX=" + a.Prefix}, a.Env...)...)
	return a
}

// s3Keys lists the object names under the archive's prefix, straight from
// MinIO.
func s3Keys(t *testing.T, m *testserver.MinIOServer, a *archive, under string) []string {
	t.Helper()
	prefix := strings.TrimPrefix(a.Prefix, "s3://"+s3Bucket+"/") + "/"
	var keys []string
	for obj := range m.Client(t).ListObjects(t.Context(), s3Bucket, minio.ListObjectsOptions{Prefix: prefix + under, Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		keys = append(keys, strings.TrimPrefix(obj.Key, prefix))
	}
	return keys
}

// The PostgreSQL round trip against MinIO, configured as an operator
// would: every setting, credentials included, in an envdir that
// archive_command, backup-push, backup-fetch and the restore_command it
// writes all read. Archive, back up, write more, restore to a restore
// point, compare.
func TestS3PITRRoundTrip(t *testing.T) {
	m := startMinIO(t)
	// Small parts and uncompressed partitions, so that partitions go up as
	// multipart uploads.
	a := newS3Archive(t, m, "", "WALNUT_S3_PART_SIZE=5242880")
	src := archivingCluster(t, a, nil)
	src.Pgbench(t, "-i", "-s", "5", "-q")

	push := mustRun(t, "", append(src.Env(), "WALNUT_PARTITION_SIZE=16777216", "WALNUT_COMPRESSION=none"),
		"--envdir", a.Envdir, "backup-push", src.DataDir)
	name := strings.TrimSpace(push.Stdout)
	if !strings.HasPrefix(name, "base_00000001") {
		t.Fatalf("backup name %q", name)
	}
	parts := s3Keys(t, m, a, "backups/"+name+"/part_")
	if len(parts) < 2 {
		t.Errorf("backup stored as %q, want several partitions", parts)
	}

	src.Pgbench(t, "-n", "-c", "2", "-t", "300", "postgres")
	want := src.QueryString(t, "SELECT count(*) || '/' || sum(abalance) FROM pgbench_accounts")
	src.Exec(t, "SELECT pg_create_restore_point('before_drop')")
	src.Exec(t, "DROP TABLE pgbench_accounts")
	switchAndWaitArchived(t, src)
	if wal := s3Keys(t, m, a, "wal/"); len(wal) < 3 {
		t.Fatalf("WAL in the bucket: %q, want the segments archive_command stored", wal)
	}

	dest := filepath.Join(a.Dir, "restored")
	mustRun(t, "", nil, "--envdir", a.Envdir, "backup-fetch", dest, "LATEST",
		"--recovery-target-name", "before_drop", "--recovery-target-action", "promote")
	conf, err := os.ReadFile(filepath.Join(dest, "postgresql.auto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "--envdir "+a.Envdir) || strings.Contains(string(conf), m.Password) {
		t.Fatalf("restore settings do not read the envdir, or hold the secret:\n%s", conf)
	}
	verifyBackup(t, dest)
	// No WALNUT_PREFIX or AWS_* in the server's environment: recovery
	// reads everything from the envdir.
	restored := testpg.Start(t, dest, testpg.Options{Conf: map[string]string{"archive_mode": "off"}})
	restored.WaitReady(t, 5*time.Minute)
	if got := restored.QueryString(t, "SELECT count(*) || '/' || sum(abalance) FROM pgbench_accounts"); got != want {
		t.Fatalf("restored pgbench_accounts %s, want %s as at the restore point", got, want)
	}
}

// The secret access key never shows in walnut's output, its logs at debug
// level in either format, its JSON, or what it stores, whether the key is
// right or wrong; and a wrong key fails at once, naming what to check.
func TestS3SecretNeverPrinted(t *testing.T) {
	m := startMinIO(t)
	secret := m.Password // distinctive: walnut-minio-<random hex>
	a := newS3Archive(t, m, "")
	src := archivingCluster(t, a, nil)
	src.Pgbench(t, "-i", "-s", "1", "-q")
	debug := "WALNUT_LOG_LEVEL=debug"
	wrong := "AWS_SECRET_ACCESS_KEY=wrong-" + secret

	outputs := map[string]result{}
	outputs["backup-push, json log"] = mustRun(t, "", env(a, src, debug), "--log-format", "json", "backup-push", src.DataDir)
	outputs["backup-list --json"] = mustRun(t, "", env(a, nil, debug), "backup-list", "--json", "--detail")
	outputs["backup-list"] = mustRun(t, "", env(a, nil, debug), "backup-list", "--detail")
	dest := filepath.Join(a.Dir, "restored")
	outputs["backup-fetch"] = mustRun(t, "", env(a, nil, debug), "backup-fetch", dest, "LATEST")

	seg := completeSegment(t, src)
	for what, args := range map[string][]string{
		"wal-push":          {"wal-push", seg},
		"wal-push, json":    {"--log-format", "json", "wal-push", seg},
		"wal-fetch":         {"wal-fetch", "000000010000000000000001", filepath.Join(a.Dir, "x")},
		"backup-list":       {"backup-list", "--json"},
		"backup-push, json": {"--log-format", "json", "backup-push", src.DataDir},
	} {
		start := time.Now()
		r := run(t, "", env(a, src, debug, wrong), args...)
		outputs["wrong secret: "+what] = r
		if r.Code == 0 {
			t.Errorf("%s with a wrong secret succeeded: %s", what, r)
		}
		if !strings.Contains(r.Stderr, "check AWS_SECRET_ACCESS_KEY") || !strings.Contains(r.Stderr, `s3 bucket "walnut"`) {
			t.Errorf("%s with a wrong secret does not say what to check: %s", what, r)
		}
		// Backoff over seven attempts would take some 15 seconds.
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s with a wrong secret took %s: a permanent error was retried", what, d)
		}
	}
	// A secret pasted into the endpoint by mistake is not repeated.
	bad := run(t, "", env(a, nil, "AWS_ENDPOINT_URL=http://walnut-root:"+secret+"@127.0.0.1:1"), "backup-list")
	outputs["secret in endpoint"] = bad
	if bad.Code == 0 {
		t.Errorf("backup-list with credentials in AWS_ENDPOINT_URL succeeded")
	}

	for what, r := range outputs {
		if strings.Contains(r.String(), secret) {
			t.Errorf("the secret appears in the output of %s:\n%s", what, r)
		}
	}
	conf, err := os.ReadFile(filepath.Join(dest, "postgresql.auto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(conf), secret) {
		t.Errorf("the secret appears in the restore settings:\n%s", conf)
	}
	for _, key := range s3Keys(t, m, a, "backups/") {
		if !strings.HasSuffix(key, ".json") {
			continue
		}
		obj, err := m.Client(t).GetObject(t.Context(), s3Bucket, strings.TrimPrefix(a.Prefix, "s3://"+s3Bucket+"/")+"/"+key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("the secret is stored in %s", key)
		}
	}
}
