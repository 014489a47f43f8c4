package cliargs

import "errors"

// RefuseWALEBackupPush stops backup-push options of WAL-E's whose meaning
// walnut cannot give, naming walnut's nearest way.
func RefuseWALEBackupPush(isSet func(flag string) bool) error {
	switch {
	case isSet("cluster-read-rate-limit"):
		// WAL-E limited the bytes read from PGDATA; walnut's limit is on
		// the bytes stored, after compression, so the two numbers differ.
		return errors.New("backup-push: --cluster-read-rate-limit: walnut limits the bytes a backup stores (compressed), not those it reads: set WALNUT_RATE_LIMIT, e.g. 50MB")
	case isSet("while-offline"):
		return errors.New("backup-push: --while-offline: walnut backs up a running server only (over one libpq session); to spare the primary, run backup-push against a running standby")
	}
	return nil
}

// RefuseWALEBackupFetch stops backup-fetch options of WAL-E's whose
// meaning walnut cannot give, naming walnut's nearest way.
func RefuseWALEBackupFetch(isSet func(flag string) bool) error {
	switch {
	case isSet("blind-restore"):
		// WAL-E then put tablespaces inside PGDATA/pg_tblspc as plain
		// directories; walnut always restores them at a location and
		// links them, and needs no links made beforehand.
		return errors.New("backup-fetch: --blind-restore: walnut needs no tablespace links made beforehand: it restores each tablespace where the backup recorded it and links it; to restore one elsewhere give --tablespace-mapping OLDDIR=NEWDIR")
	}
	return nil
}
