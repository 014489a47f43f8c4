// Package restore is backup-fetch: it extracts a base backup into a new
// data directory, checking every file against the manifest, makes it
// durable, and writes the recovery settings that start archive recovery.
package restore
