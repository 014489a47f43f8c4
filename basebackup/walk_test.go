package basebackup

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/walnut-pg/walnut/archive"
)

// The walker leaves out what pg_basebackup leaves out, keeps the
// directories the server expects, and walks tablespaces from their
// locations.
func TestWalkerExclusions(t *testing.T) {
	data, ts := t.TempDir(), t.TempDir()
	files := []string{
		"PG_VERSION", "postgresql.conf", "postmaster.pid", "postmaster.opts", "backup_label",
		"tablespace_map", "current_logfiles", "global/pg_control", "global/1262", "global/pg_internal.init",
		"base/5/1259", "base/5/1259_fsm", "base/5/16384", "base/5/16384.1", "base/5/16384_vm", "base/5/16384_init",
		"base/5/t3_16400", "base/5/pgsql_tmp/pgsql_tmp1.0", "base/5/pg_internal.init",
		"pg_wal/000000010000000000000001", "pg_wal/archive_status/000000010000000000000001.done",
		"pg_stat_tmp/global.stat", "pg_replslot/s/state", "pg_subtrans/0000", "pg_xact/0000",
		"log/postgresql.log", "standby.signal", "recovery.signal",
	}
	for _, f := range files {
		p := filepath.Join(data, f)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(ts, "PG_15_202209061", "5"), 0o700)
	os.WriteFile(filepath.Join(ts, "PG_15_202209061", "5", "16500"), []byte("x"), 0o600)
	os.MkdirAll(filepath.Join(ts, "PG_16_202307071"), 0o700) // another version's: not ours
	os.MkdirAll(filepath.Join(data, "pg_tblspc"), 0o700)
	if err := os.Symlink(ts, filepath.Join(data, "pg_tblspc", "16499")); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "pg_hba.conf")
	os.WriteFile(conf, []byte("local all all trust\n"), 0o600)
	os.Symlink(conf, filepath.Join(data, "pg_hba.conf"))

	var got []string
	w := &walker{versionDir: "PG_15_", emit: func(it walkItem) error {
		got = append(got, it.Name)
		return nil
	}}
	if err := w.walkCluster(context.Background(), data, []archive.Tablespace{{OID: "16499", Name: "ts", Location: ts}}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PG_VERSION", "base", "base/5", "base/5/1259", "base/5/1259_fsm", "base/5/16384_init",
		"global", "global/1262", "log", "log/postgresql.log", "pg_hba.conf",
		"pg_replslot", "pg_stat_tmp", "pg_subtrans", "pg_tblspc",
		"pg_wal", "pg_wal/archive_status", "pg_xact", "pg_xact/0000", "postgresql.conf",
		"pg_tblspc/16499/PG_15_202209061", "pg_tblspc/16499/PG_15_202209061/5", "pg_tblspc/16499/PG_15_202209061/5/16500",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("walked:\n%q\nwant:\n%q", got, want)
	}
}
