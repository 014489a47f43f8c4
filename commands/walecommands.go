package commands

import (
	"fmt"
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

// restoreSpecSource is WAL-E's pseudo restore spec: the tablespace
// locations the backup recorded, which is where walnut restores them.
const restoreSpecSource = "SOURCE"
