package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// One backup, restored to a point in time given as a timestamp, as an LSN
// and as a transaction ID: each restore holds exactly the rows committed
// by then.
func TestPITRTargets(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Exec(t, "CREATE TABLE events (id int PRIMARY KEY, at timestamptz DEFAULT now())")
	src.Exec(t, "INSERT INTO events (id) SELECT g FROM generate_series(1, 100) g")
	mustRun(t, "", env(a, src), "backup-push", src.DataDir)

	src.Exec(t, "INSERT INTO events (id) SELECT g FROM generate_series(101, 200) g")
	// now() of a committed transaction is before its commit; take the time
	// after it and wait past it before the next write.
	targetTime := src.QueryString(t, "SELECT clock_timestamp()::text")
	time.Sleep(1100 * time.Millisecond)
	src.Exec(t, "INSERT INTO events (id) SELECT g FROM generate_series(201, 300) g")
	targetLSN := src.QueryString(t, "SELECT pg_current_wal_lsn()::text")
	src.Exec(t, "INSERT INTO events (id) SELECT g FROM generate_series(301, 400) g")
	conn := src.Connect(t)
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var targetXID string
	if _, err := tx.Exec(t.Context(), "INSERT INTO events (id) SELECT g FROM generate_series(401, 500) g"); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(t.Context(), "SELECT txid_current()::text").Scan(&targetXID); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, "INSERT INTO events (id) SELECT g FROM generate_series(501, 600) g")
	switchAndWaitArchived(t, src)

	cases := []struct {
		flag, value string
		want        string // rows restored
	}{
		{"--recovery-target-time", targetTime, "200"},
		{"--recovery-target-lsn", targetLSN, "300"},
		{"--recovery-target-xid", targetXID, "500"},
	}
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.flag, "--"), func(t *testing.T) {
			dest := filepath.Join(a.Dir, strings.TrimPrefix(c.flag, "--"))
			mustRun(t, "", env(a, nil), "backup-fetch", dest, "LATEST", c.flag, c.value, "--recovery-target-action", "promote")
			restored := startRestored(t, a, dest)
			if got := restored.QueryString(t, "SELECT count(*)::text FROM events"); got != c.want {
				t.Fatalf("%s %s: %s rows restored, want %s", c.flag, c.value, got, c.want)
			}
			restored.Stop(t)
		})
	}
}

// A standby restored with --standby follows the archive: wal-fetch's "not
// there yet" (66) makes it wait and retry, and new WAL shows up on it.
func TestStandbyFollowsArchive(t *testing.T) {
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Exec(t, "CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g")
	mustRun(t, "", env(a, src), "backup-push", src.DataDir)
	dest := filepath.Join(a.Dir, "standby")
	mustRun(t, "", env(a, nil), "backup-fetch", dest, "LATEST", "--standby")
	standby := testpg.Start(t, dest, testpg.Options{Env: []string{"WALNUT_PREFIX=" + a.Prefix}, Conf: map[string]string{"hot_standby": "on"}})

	src.Exec(t, "INSERT INTO t SELECT g FROM generate_series(11, 20) g")
	switchAndWaitArchived(t, src)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n, err := standby.Query(t.Context(), "SELECT count(*)::text FROM t")
		if err == nil && n == "20" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby did not replay the new WAL (count %q, %v)\n%s", n, err, standby.LogTail(30))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r := standby.QueryString(t, "SELECT pg_is_in_recovery()::text"); r != "true" {
		t.Fatalf("standby left recovery: pg_is_in_recovery = %s", r)
	}
}
