package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// maxPoolSize bounds WAL-E's --pool-size for a backup: each worker holds
// a compressor and a part buffer.
const maxPoolSize = 64

// poolSizeFlag checks WAL-E's --pool-size (-p) of backup-push and
// backup-fetch: transfers at once, walnut's upload or download
// concurrency.
func poolSizeFlag(cmd string, n int) (int64, error) {
	if n < 1 || n > maxPoolSize {
		return 0, usageError(fmt.Errorf("%s: --pool-size %d: want 1 to %d", cmd, n, maxPoolSize))
	}
	return int64(n), nil
}

// refuseWALEBackupPush stops backup-push options of WAL-E's whose meaning
// walnut cannot give, naming walnut's nearest way.
func refuseWALEBackupPush(c *cli.Context) error {
	switch {
	case c.IsSet("cluster-read-rate-limit"):
		// WAL-E limited the bytes read from PGDATA; walnut's limit is on
		// the bytes stored, after compression, so the two numbers differ.
		return usageError(fmt.Errorf("backup-push: --cluster-read-rate-limit: walnut limits the bytes a backup stores (compressed), not those it reads: set WALNUT_RATE_LIMIT, e.g. 50MB"))
	case c.IsSet("while-offline"):
		return usageError(fmt.Errorf("backup-push: --while-offline: walnut backs up a running server only (over one libpq session); to spare the primary, run backup-push against a running standby"))
	}
	return nil
}

// restoreSpecSource is WAL-E's pseudo restore spec: the tablespace
// locations the backup recorded, which is where walnut restores them.
const restoreSpecSource = "SOURCE"

// refuseWALEBackupFetch stops backup-fetch options of WAL-E's whose
// meaning walnut cannot give, naming walnut's nearest way.
func refuseWALEBackupFetch(c *cli.Context) error {
	switch {
	case c.IsSet("blind-restore"):
		// WAL-E then put tablespaces inside PGDATA/pg_tblspc as plain
		// directories; walnut always restores them at a location and
		// links them, and needs no links made beforehand.
		return usageError(fmt.Errorf("backup-fetch: --blind-restore: walnut needs no tablespace links made beforehand: it restores each tablespace where the backup recorded it and links it; to restore one elsewhere give --tablespace-mapping OLDDIR=NEWDIR"))
	}
	return nil
}
