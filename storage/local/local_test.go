package local_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/local"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := local.New(t.TempDir() + "/archive")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Run as root into an archive owned by another user (as backup-push from
// root's cron into postgres's archive), new directories and objects take
// the archive's owner, so archive_command can still write there.
func TestRootInheritsArchiveOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can create files owned by another user; nothing to check otherwise")
	}
	root := t.TempDir()
	const uid, gid = 4242, 4343
	if err := os.Chown(root, uid, gid); err != nil {
		t.Fatal(err)
	}
	s, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "backups/b/part_0001.tar", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"backups", "backups/b", "backups/b/part_0001.tar"} {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
	}
}
