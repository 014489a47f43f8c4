package check

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

func TestSamePrefix(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"s3://bucket/db1", "s3://bucket/db1/", true},
		{"S3://bucket/db1", "s3://bucket/db1", true},
		{"wabs://c/p", "azure://c/p", true},
		{"s3://bucket/db1", "s3://bucket/db2", false},
		{"s3://Bucket/db1", "s3://bucket/db1", false},
		{"file:///var/lib/walnut", "file:///var/lib/walnut/", true},
	} {
		if got := samePrefix(c.a, c.b); got != c.same {
			t.Errorf("samePrefix(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

func TestClock(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		stamped time.Time
		want    Status
	}{
		{now, OK},
		{now.Add(-30 * time.Second), OK},
		{now.Add(-2 * time.Minute), Fail},
		{now.Add(3 * time.Minute), Fail},
		{time.Time{}, Warn},
	} {
		ch := &checker{}
		ch.checkClock(c.stamped, now, now.Add(100*time.Millisecond))
		if got := ch.results[0].Status; got != c.want {
			t.Errorf("stamped %v from now: %s (%s), want %s", c.stamped.Sub(now), got, ch.results[0].Detail, c.want)
		}
	}
}

func TestArchiverFailing(t *testing.T) {
	t0 := time.Now()
	for _, c := range []struct {
		st   archiverStats
		want bool
	}{
		{archiverStats{}, false},
		{archiverStats{haveArchived: true, lastArchived: t0}, false},
		{archiverStats{haveArchived: true, lastArchived: t0, haveLastFailed: true, lastFailed: t0.Add(-time.Minute)}, false},
		{archiverStats{haveArchived: true, lastArchived: t0, haveLastFailed: true, lastFailed: t0.Add(time.Minute)}, true},
		{archiverStats{haveLastFailed: true, lastFailed: t0}, true},
	} {
		if got := c.st.failing(); got != c.want {
			t.Errorf("%+v: failing %v", c.st, got)
		}
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	envdir := filepath.Join(dir, "env")
	os.Mkdir(envdir, 0o750)
	os.WriteFile(filepath.Join(envdir, "AWS_SECRET_ACCESS_KEY"), []byte("x"), 0o600)
	key := filepath.Join(dir, "key.asc")
	os.WriteFile(key, []byte("x"), 0o600)
	run := func() Result {
		ch := &checker{o: Options{Secrets: []SecretFile{{Setting: "--envdir", Path: envdir, Dir: true}, {Setting: "WALNUT_PGP_PRIVATE_KEY_FILE", Path: key}}}}
		ch.checkSecrets()
		return ch.results[0]
	}
	if r := run(); r.Status != OK {
		t.Fatalf("closed files: %+v", r)
	}
	os.Chmod(key, 0o640)
	if r := run(); r.Status != Warn || !strings.Contains(r.Detail, key) {
		t.Fatalf("group-readable key: %+v", r)
	}
	os.Chmod(filepath.Join(envdir, "AWS_SECRET_ACCESS_KEY"), 0o644)
	if r := run(); r.Status != Fail || !strings.Contains(r.Detail, "AWS_SECRET_ACCESS_KEY") {
		t.Fatalf("world-readable envdir file: %+v", r)
	}
	os.Remove(key)
	if r := run(); r.Status != Fail || !strings.Contains(r.Detail, "key.asc") {
		t.Fatalf("missing key file: %+v", r)
	}
}

// The probe leaves nothing behind, and a store that fails is named with
// the operation that failed.
func TestStoreProbe(t *testing.T) {
	s := mem.New()
	ch := &checker{o: Options{Store: s, Prefix: "mem://", Timeout: time.Minute}}
	if !ch.checkStore(context.Background()) || ch.results[0].Status != OK || ch.results[1].Status != OK {
		t.Fatalf("good store: %+v", ch.results)
	}
	n := 0
	s.List(context.Background(), "", func(storage.ObjectInfo) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d objects left behind", n)
	}
	faulty := storagetest.NewFaulty(s, storagetest.Fault{Op: storagetest.OpGet})
	ch = &checker{o: Options{Store: faulty, Prefix: "mem://", Timeout: time.Minute}}
	if ch.checkStore(context.Background()) || ch.results[0].Status != Fail || !strings.Contains(ch.results[0].Detail, "get ") {
		t.Fatalf("failing get: %+v", ch.results)
	}
}
