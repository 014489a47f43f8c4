package pgcontrol

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// pgBinDir finds a PostgreSQL installation to test against. A missing one is
// a skip, except under WALNUT_TEST_REQUIRE=all (CI), where it is a failure.
func pgBinDir(t *testing.T) string {
	t.Helper()
	// initdb in PATH may be a lone symlink (Debian's postgresql-common, or a
	// hand-made link); pg_controldata sits beside the real binary.
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && hasPGTools(filepath.Dir(real)) {
			return filepath.Dir(real)
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := string(bytes.TrimSpace(out)); hasPGTools(dir) {
			return dir
		}
	}
	// Debian and Ubuntu keep initdb out of PATH.
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(found, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[j]))))
		return vi > vj
	})
	if len(found) > 0 && hasPGTools(filepath.Dir(found[0])) {
		return filepath.Dir(found[0])
	}
	if os.Getenv("WALNUT_TEST_REQUIRE") == "all" {
		t.Fatal("no PostgreSQL installation found (initdb) and WALNUT_TEST_REQUIRE=all")
	}
	t.Skip("no PostgreSQL installation found (initdb); set WALNUT_TEST_REQUIRE=all to make this a failure")
	return ""
}

func hasPGTools(dir string) bool {
	for _, tool := range []string{"initdb", "pg_controldata"} {
		if _, err := os.Stat(filepath.Join(dir, tool)); err != nil {
			return false
		}
	}
	return true
}

// initdbCluster creates a fresh cluster. PostgreSQL refuses to run as root,
// so as root the work is done as the postgres user in a directory it owns.
func initdbCluster(t *testing.T, bin string, args ...string) string {
	t.Helper()
	parent, err := os.MkdirTemp("", "walnut-pgcontrol-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	data := filepath.Join(parent, "data")
	cmdArgs := append([]string{filepath.Join(bin, "initdb"), "-N", "-A", "trust", "-D", data}, args...)
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(parent, uid, gid); err != nil {
			t.Fatal(err)
		}
		cmdArgs = append([]string{"runuser", "-u", "postgres", "--"}, cmdArgs...)
	}
	cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmdArgs, err, out)
	}
	return data
}

func TestParseControlFileFreshInitdb(t *testing.T) {
	bin := pgBinDir(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"default", nil},
		{"wal-segsize=64 checksums", []string{"--wal-segsize=64", "--data-checksums"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := initdbCluster(t, bin, tc.args...)
			b, err := os.ReadFile(filepath.Join(data, "global", "pg_control"))
			if err != nil {
				t.Fatal(err)
			}
			cd, err := ParseControlFile(b)
			if err != nil {
				t.Fatal(err)
			}

			cmd := exec.Command(filepath.Join(bin, "pg_controldata"), "-D", data)
			cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("pg_controldata: %v", err)
			}
			checkAgainstControldata(t, cd, parseControldataOutput(t, string(out)), time.UTC)

			// The segment holding the initial checkpoint must carry the same
			// system identifier and segment size in its long page header.
			seg := WALFileName(cd.TimelineID, SegmentNumber(cd.Redo, uint64(cd.WALSegmentSize)), uint64(cd.WALSegmentSize))
			f, err := os.Open(filepath.Join(data, "pg_wal", seg))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			head := make([]byte, 8192)
			if _, err := f.ReadAt(head, 0); err != nil {
				t.Fatal(err)
			}
			sysid, segSize, err := WALSegmentSystemIdentifier(head)
			if err != nil {
				t.Fatal(err)
			}
			if sysid != cd.SystemIdentifier || segSize != cd.WALSegmentSize {
				t.Fatalf("%s header: sysid %d size %d; pg_control: %d %d", seg, sysid, segSize, cd.SystemIdentifier, cd.WALSegmentSize)
			}
			if v, err := WALSegmentPGVersion(head); err != nil || v != cd.PGVersion {
				t.Fatalf("WAL magic says PostgreSQL %d (%v), pg_control says %d", v, err, cd.PGVersion)
			}
		})
	}
}
