// Package testpg starts throwaway PostgreSQL clusters for walnut's end-to-end
// tests.
//
// PostgreSQL refuses to run as root, so when the tests run as root every
// server-side command goes through runuser to the postgres system user, with
// an environment passed explicitly through env(1). As any other user the
// commands run directly. Files the server must reach (data directories, the
// walnut binary an archive_command runs, a file:// archive) belong under
// SharedTempDir, not t.TempDir, whose parents the server user cannot traverse.
package testpg
