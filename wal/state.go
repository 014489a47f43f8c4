package wal

import (
	"os"
	"path/filepath"
)

// walnut keeps its own files in a directory under pg_wal rather than in
// archive_status, which belongs to PostgreSQL. PostgreSQL only ever looks
// at names in pg_wal that look like WAL files (its cleanup, recycling and
// pg_resetwal all filter by name), and pg_basebackup and walnut's own
// backup-push store pg_wal empty but for archive_status, so the directory
// is neither touched by the server nor copied into backups.
const (
	walStateDir     = ".walnut"
	archivedDirName = "archived" // markers of files wal-push stored ahead of PostgreSQL's call
	prefetchDirName = "prefetch" // segments wal-fetch fetched ahead of PostgreSQL's call
)

// isPGWALDir reports whether dir is a server's pg_wal: it has the
// archive_status directory that PostgreSQL creates at startup. wal-push
// and wal-fetch only pool and prefetch there, never beside a file an
// operator pushes or fetches by hand.
func isPGWALDir(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "archive_status"))
	return err == nil && fi.IsDir()
}

func walStatePath(walDir, sub string) string {
	return filepath.Join(walDir, walStateDir, sub)
}
