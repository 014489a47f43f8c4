package local_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/local"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

func newStore(t *testing.T) (*local.Store, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "archive")
	s, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func listKeys(t *testing.T, s storage.Store, prefix string) []string {
	t.Helper()
	var ks []string
	if err := s.List(t.Context(), prefix, func(info storage.ObjectInfo) error {
		ks = append(ks, info.Key)
		return nil
	}); err != nil {
		t.Fatalf("List %q: %v", prefix, err)
	}
	return ks
}

// tempFiles returns the upload temp files anywhere under root.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".tmp-") {
			found = append(found, path)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return found
}

func TestNewWantsAbsoluteRoot(t *testing.T) {
	for _, root := range []string{"", "archive", "./archive", "../archive"} {
		if _, err := local.New(root); err == nil {
			t.Errorf("New(%q) succeeded, want an error", root)
		}
	}
}

func TestMissingRootIsEmpty(t *testing.T) {
	s, root := newStore(t)
	if ks := listKeys(t, s, ""); len(ks) != 0 {
		t.Errorf("List = %q, want nothing", ks)
	}
	if _, err := s.Stat(t.Context(), "walnut.json"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reading created the root: %v", err)
	}
}

func TestPutModes(t *testing.T) {
	s, root := newStore(t)
	if err := s.Put(t.Context(), "wal/x", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, filepath.Join(root, "wal")} {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		// The umask may take bits away but never adds any.
		if perm := fi.Mode().Perm(); perm&^0o750 != 0 || perm&0o700 != 0o700 {
			t.Errorf("%s has mode %v, want at most 0750", dir, perm)
		}
	}
	fi, err := os.Stat(filepath.Join(root, "wal", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o640 {
		t.Errorf("object has mode %v, want 0640", perm)
	}
}

func TestInvalidKeys(t *testing.T) {
	s, root := newStore(t)
	bad := []string{"", "/abs", "a//b", "a/", "./a", "a/./b", "../a", "a/../../b", "..", `a\b`, "a\x00b", ".tmp-x", "wal/.tmp-x"}
	for _, key := range bad {
		errs := map[string]error{
			"Put":    s.Put(t.Context(), key, strings.NewReader("x"), 1),
			"Delete": s.Delete(t.Context(), key),
		}
		_, errs["Get"] = s.Get(t.Context(), key)
		_, errs["Stat"] = s.Stat(t.Context(), key)
		storagetest.WantPermanent(t, fmt.Sprintf("of %q", key), errs, "invalid key "+strconv.Quote(key))
	}
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an invalid key created something: %v", err)
	}
	for _, key := range []string{"k", "a/b.c", "wal/..x", "backups/b/.hidden", "x.tmp-y"} {
		if err := s.Put(t.Context(), key, strings.NewReader("x"), 1); err != nil {
			t.Errorf("Put(%q): %v", key, err)
		}
	}
}

func TestListSkipsTempAndForeignFiles(t *testing.T) {
	s, root := newStore(t)
	if err := s.Put(t.Context(), "wal/a", strings.NewReader("a"), 1); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"wal/.tmp-123", ".tmp-9"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte("partial"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(root, "wal", "a"), filepath.Join(root, "wal", "link")); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"wal/a"}) {
		t.Errorf("List = %q, want only wal/a", got)
	}
}

// blockingReader hands out a little data, then waits for release.
type blockingReader struct {
	started chan struct{}
	release chan struct{}
	sent    bool
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		close(b.started)
		return copy(p, "half an object"), nil
	}
	<-b.release
	return 0, io.EOF
}

func TestPutInProgressIsInvisible(t *testing.T) {
	s, root := newStore(t)
	r := &blockingReader{started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error)
	go func() { done <- s.Put(t.Context(), "wal/seg", r, -1) }()
	<-r.started
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Errorf("List during Put = %q, want nothing", got)
	}
	if _, err := s.Stat(t.Context(), "wal/seg"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat during Put: %v, want ErrNotFound", err)
	}
	if len(tempFiles(t, root)) != 1 {
		t.Errorf("want one temp file during Put, found %q", tempFiles(t, root))
	}
	close(r.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"wal/seg"}) {
		t.Errorf("List after Put = %q", got)
	}
}

func TestFailedPutRemovesTempFile(t *testing.T) {
	s, root := newStore(t)
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("some data"), iotestErr{boom})
	if err := s.Put(t.Context(), "wal/seg", r, -1); !errors.Is(err, boom) {
		t.Errorf("Put = %v, want the reader's error", err)
	}
	if err := s.Put(t.Context(), "wal/short", strings.NewReader("abc"), 10); err == nil {
		t.Error("Put of 3 bytes announced as 10 succeeded")
	}
	if found := tempFiles(t, root); len(found) != 0 {
		t.Errorf("temp files left behind: %q", found)
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

func TestKeyUnderObjectCannotBePut(t *testing.T) {
	s, _ := newStore(t)
	if err := s.Put(t.Context(), "a", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	err := s.Put(t.Context(), "a/b", strings.NewReader("x"), 1)
	if err == nil || errors.Is(err, storage.ErrNotFound) || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "a/b") {
		t.Errorf("Put a/b over object a = %v, want a Permanent error naming a/b", err)
	}
}

func TestDeleteEverythingLeavesCleanTree(t *testing.T) {
	s, root := newStore(t)
	keys := []string{"walnut.json", "wal/a", "wal/b", "backups/b1/part_0001", "backups/b1/deep/x", "backups/b1.json"}
	for _, key := range keys {
		if err := s.Put(t.Context(), key, strings.NewReader(key), -1); err != nil {
			t.Fatal(err)
		}
	}
	// A directory that is no object is not deleted by its name.
	if err := s.Delete(t.Context(), "backups/b1/deep"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(t.Context(), "backups/b1/deep/x"); err != nil {
		t.Fatalf("Delete of a directory name removed what is under it: %v", err)
	}
	for _, key := range keys {
		if err := s.Delete(t.Context(), key); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("root is gone: %v", err)
	}
	if len(entries) != 0 {
		t.Errorf("root still holds %d entries after deleting everything", len(entries))
	}
}

func TestListPrefixCannotEscapeRoot(t *testing.T) {
	s, root := newStore(t)
	outside := filepath.Join(filepath.Dir(root), "outside")
	if err := os.MkdirAll(outside, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "a", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"../outside/", "../outside/s", "/", "a//", "./"} {
		if got := listKeys(t, s, prefix); len(got) != 0 {
			t.Errorf("List %q = %q, want nothing", prefix, got)
		}
	}
}

func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsPostgres(t, "TestPermissionDenied")
		return
	}
	s, root := newStore(t)
	if err := s.Put(t.Context(), "wal/x", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "wal", "x"), 0); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(t.Context(), "wal/x")
	if err == nil || errors.Is(err, storage.ErrNotFound) || !storage.IsPermanent(err) {
		t.Errorf("Get of an unreadable object = %v, want a Permanent error that is not ErrNotFound", err)
	}
	if err := os.Chmod(filepath.Join(root, "wal"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "wal"), 0o750) })
	err = s.List(t.Context(), "", func(storage.ObjectInfo) error { return nil })
	if err == nil || !storage.IsPermanent(err) {
		t.Errorf("List over an unreadable directory = %v, want a Permanent error", err)
	}
}

// runAsPostgres runs one test of this binary again as the postgres user,
// the user archive_command runs as: root reads files whatever their mode.
func runAsPostgres(t *testing.T, name string) {
	t.Helper()
	if _, err := user.Lookup("postgres"); err != nil {
		t.Skipf("running as root and there is no postgres user to drop to: %v", err)
	}
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		t.Skipf("running as root and runuser is missing: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(dir); d != "/" && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "test.bin")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), runuser, "-u", "postgres", "--", bin, "-test.run", "^"+name+"$", "-test.v")
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Errorf("%s as postgres: %v\n%s", name, err, out)
	}
}

func TestWALPutsMemoryBounded(t *testing.T) {
	s, _ := newStore(t)
	storagetest.BoundedWALPuts(t, s, 8)
}
