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

// azureContainer is the container every Azurite test server gets.
const azureContainer = "walnut"

// newAzureArchive is an archive under a prefix named for the test in
// Azurite's container, its settings in Env and, with WALNUT_PREFIX, in an
// envdir.
func newAzureArchive(t *testing.T, az *testserver.Azurite) *archive {
	a := &archive{
		Dir:    testpg.SharedTempDir(t),
		Prefix: "azure://" + azureContainer + "/" + strings.Trim(nonKeyChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-"),
		Env:    az.Env(),
	}
	a.Envdir = writeEnvdir(t, append([]string{"WALNUT_PREFIX=" + a.Prefix}, a.Env...)...)
	return a
}

// azureStore reads the archive straight from Azurite.
func azureStore(t *testing.T, az *testserver.Azurite, a *archive) storage.Store {
	t.Helper()
	s, err := azure.New(azure.Config{
		Container:     azureContainer,
		Prefix:        strings.TrimPrefix(a.Prefix, "azure://"+azureContainer+"/") + "/",
		Endpoint:      az.Endpoint,
		Account:       testserver.AzuriteAccount,
		Key:           testserver.AzuriteKey,
		CredentialVar: "AZURE_STORAGE_KEY",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The PostgreSQL round trip against Azure Blob Storage (Azurite),
// configured as an operator would: the prefix and the account key in an
// envdir that archive_command, backup-push, backup-fetch and the
// restore_command it writes all read. Archive, back up, write more,
// restore to a restore point, compare. The key appears in no output, log
// or configuration file.
func TestAzurePITRRoundTrip(t *testing.T) {
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, azureContainer)
	a := newAzureArchive(t, az)
	src := archivingCluster(t, a, nil)
	src.Pgbench(t, "-i", "-s", "3", "-q")

	var outputs []string
	push := mustRun(t, "", append(src.Env(), "WALNUT_PARTITION_SIZE=4194304"), "--envdir", a.Envdir, "backup-push", src.DataDir)
	outputs = append(outputs, push.String())
	name := strings.TrimSpace(push.Stdout)
	if !strings.HasPrefix(name, "base_00000001") {
		t.Fatalf("backup name %q", name)
	}

	src.Pgbench(t, "-n", "-c", "2", "-t", "300", "postgres")
	want := src.QueryString(t, tableDigest)
	src.Exec(t, "SELECT pg_create_restore_point('before_drop')")
	src.Exec(t, "DROP TABLE pgbench_history")
	switchAndWaitArchived(t, src)

	// The archive is in the container, where the envdir said.
	store := azureStore(t, az, a)
	if _, err := store.Stat(t.Context(), "backups/"+name+".json"); err != nil {
		t.Fatalf("sentinel of %s not in the container: %v", name, err)
	}
	segments := 0
	if err := store.List(t.Context(), "wal/", func(storage.ObjectInfo) error { segments++; return nil }); err != nil {
		t.Fatal(err)
	}
	if segments < 3 {
		t.Fatalf("%d WAL objects in the container, want the segments archive_command stored", segments)
	}
	list := mustRun(t, "", nil, "--envdir", a.Envdir, "backup-list", "--json", "--detail")
	outputs = append(outputs, list.String())

	dest := filepath.Join(a.Dir, "restored")
	fetch := mustRun(t, "", nil, "--envdir", a.Envdir, "backup-fetch", dest, "LATEST",
		"--recovery-target-name", "before_drop", "--recovery-target-action", "promote")
	outputs = append(outputs, fetch.String())
	conf, err := os.ReadFile(filepath.Join(dest, "postgresql.auto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "--envdir "+a.Envdir) {
		t.Fatalf("restore settings do not read the envdir:\n%s", conf)
	}
	verifyBackup(t, dest)
	// No WALNUT_PREFIX or AZURE_* in the server's environment: recovery
	// reads everything from the envdir.
	restored := testpg.Start(t, dest, testpg.Options{Conf: map[string]string{"archive_mode": "off"}})
	restored.WaitReady(t, 5*time.Minute)
	if got := restored.QueryString(t, tableDigest); got != want {
		t.Fatalf("restored digest %s, want %s as at the restore point", got, want)
	}

	outputs = append(outputs, string(conf), src.LogTail(1000), restored.LogTail(1000))
	for _, text := range outputs {
		if strings.Contains(text, testserver.AzuriteKey) {
			t.Errorf("the account key appears in:\n%s", text)
		}
	}
}
