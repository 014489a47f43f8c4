package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The database password reaches the server and nothing else: not the
// error of a failed login, not debug logs, not JSON logs, not the sentinel.
func TestPasswordNeverPrinted(t *testing.T) {
	const secret = "walnut-S3cr3t-7f9c2e"
	a := newArchive(t)
	src := archivingCluster(t, a, nil)
	src.Exec(t, "CREATE ROLE backup SUPERUSER LOGIN PASSWORD '"+secret+"'")
	hba := filepath.Join(src.DataDir, "pg_hba.conf")
	old, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hba, append([]byte("local all backup scram-sha-256\n"), old...), 0o600); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, "SELECT pg_reload_conf()")

	wrong := run(t, "", env(a, src, "PGUSER=backup", "PGPASSWORD=wrong-"+secret, "WALNUT_LOG_LEVEL=debug"), "backup-push", src.DataDir)
	if wrong.Code == 0 || !strings.Contains(wrong.Stderr, "password authentication failed") {
		t.Fatalf("backup-push with a wrong password: %s", wrong)
	}
	right := run(t, "", env(a, src, "PGUSER=backup", "PGPASSWORD="+secret, "WALNUT_LOG_LEVEL=debug"), "--log-format", "json", "backup-push", src.DataDir)
	if right.Code != 0 {
		t.Fatalf("backup-push with the password: %s", right)
	}
	name := strings.TrimSpace(right.Stdout)
	sentinel, err := os.ReadFile(filepath.Join(a.Path, "backups", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	// A key setting only in this shell's environment would not reach the
	// restore_command: backup-fetch names it, without its value. A cloud
	// credential is no concern of a file:// archive's.
	fetched := mustRun(t, "", env(a, nil, "WALNUT_PGP_PASSPHRASE="+secret, "AWS_SECRET_ACCESS_KEY="+secret), "backup-fetch", filepath.Join(a.Dir, "restore"), name)
	if !strings.Contains(fetched.Stderr, "WALNUT_PGP_PASSPHRASE") || !strings.Contains(fetched.Stderr, "--envdir") {
		t.Errorf("backup-fetch does not warn that WALNUT_PGP_PASSPHRASE will not reach restore_command:\n%s", fetched)
	}
	if strings.Contains(fetched.Stderr, "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("backup-fetch of a file:// archive warns about an S3 setting:\n%s", fetched)
	}
	for what, text := range map[string]string{
		"failed login": wrong.String(), "json debug log": right.String(), "sentinel": string(sentinel),
		"backup-list":  mustRun(t, "", env(a, nil), "backup-list", "--json", "--detail").Stdout,
		"backup-fetch": fetched.String(),
	} {
		if strings.Contains(text, secret) {
			t.Errorf("the password appears in the %s:\n%s", what, text)
		}
	}
}
