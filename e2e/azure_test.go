package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testpg"
	"github.com/walnut-pg/walnut/internal/testserver"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/azure"
)

// writeEnvdir writes a daemontools envdir the server user can read and
// nobody else, as an operator would for /etc/wal-e.d/env.
func writeEnvdir(t *testing.T, dir string, vars map[string]string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range vars {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := testpg.ChownToServer(dir); err != nil {
		t.Fatal(err)
	}
}

// The round trip against Azure Blob Storage (Azurite): PostgreSQL archives
// through an envdir that holds the prefix and the credentials, backup-push
// and backup-fetch take the same envdir, and the restored server fetches
// WAL with them too, without a single setting in its own environment. The
// account key appears in no output, log or configuration file.
func TestAzurePITR(t *testing.T) {
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, "walnut")
	dir := testpg.SharedTempDir(t)
	envdir := filepath.Join(dir, "env")
	writeEnvdir(t, envdir, map[string]string{
		"WALNUT_PREFIX":          "azure://walnut/pg/main",
		"AZURE_STORAGE_ACCOUNT":  testserver.AzuriteAccount,
		"AZURE_STORAGE_KEY":      testserver.AzuriteKey,
		"AZURE_STORAGE_ENDPOINT": az.Endpoint,
	})
	walnut := walnutBin + " --envdir " + envdir
	src := testpg.New(t, testpg.Options{Conf: map[string]string{
		"archive_mode":    "on",
		"archive_command": walnut + " wal-push %p",
		"archive_timeout": "0",
	}})
	src.Pgbench(t, "-i", "-s", "3", "-q")

	var outputs []string
	push := mustRun(t, "", append(src.Env(), "WALNUT_PARTITION_SIZE=4194304"), "--envdir", envdir, "backup-push", src.DataDir)
	outputs = append(outputs, push.String())
	name := strings.TrimSpace(push.Stdout)
	if !strings.HasPrefix(name, "base_") {
		t.Fatalf("backup name %q", name)
	}

	src.Pgbench(t, "-n", "-c", "2", "-t", "300", "postgres")
	want := src.QueryString(t, tableDigest)
	src.Exec(t, "SELECT pg_create_restore_point('before_drop')")
	src.Exec(t, "DROP TABLE pgbench_history")
	src.Pgbench(t, "-n", "-c", "2", "-t", "50", "-b", "select-only", "postgres")
	switchAndWaitArchived(t, src)

	list := mustRun(t, "", nil, "--envdir", envdir, "backup-list", "--json", "--detail")
	outputs = append(outputs, list.String())
	if !strings.Contains(list.Stdout, name) {
		t.Fatalf("backup-list does not show %s:\n%s", name, list)
	}

	// The archive is in the container, where the envdir said.
	store, err := azure.New(azure.Config{Container: "walnut", Prefix: "pg/main/", Endpoint: az.Endpoint,
		Account: testserver.AzuriteAccount, Key: testserver.AzuriteKey, CredentialVar: "AZURE_STORAGE_KEY"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Stat(t.Context(), "backups/"+name+".json"); err != nil {
		t.Fatalf("sentinel of %s not in the container: %v", name, err)
	}
	segments := 0
	store.List(t.Context(), "wal/", func(storage.ObjectInfo) error { segments++; return nil })
	if segments < 3 {
		t.Fatalf("%d WAL objects in the container, want the archived segments", segments)
	}

	dest := filepath.Join(dir, "restored")
	fetch := mustRun(t, "", nil, "--envdir", envdir, "backup-fetch", dest, "LATEST",
		"--recovery-target-name", "before_drop", "--recovery-target-action", "promote")
	outputs = append(outputs, fetch.String())
	if !strings.Contains(fetch.Stdout, "--envdir "+envdir+" wal-fetch %f %p") {
		t.Errorf("restore_command does not carry the envdir:\n%s", fetch.Stdout)
	}
	verifyBackup(t, dest)
	// No WALNUT_PREFIX, no AZURE_*: only the envdir named in
	// restore_command gets the restored server its WAL.
	restored := testpg.Start(t, dest, testpg.Options{Conf: map[string]string{"archive_mode": "off"}})
	restored.WaitReady(t, 5*time.Minute)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("restored digest %s, want %s as at the restore point", got, want)
	}

	autoConf, err := os.ReadFile(filepath.Join(dest, "postgresql.auto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(autoConf), src.LogTail(1000), restored.LogTail(1000))
	for _, text := range outputs {
		if strings.Contains(text, testserver.AzuriteKey) {
			t.Errorf("the account key appears in:\n%s", text)
		}
	}
}
