package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/walnut-pg/walnut/storage"
)

// Identity is walnut.json: which cluster an archive belongs to. It is
// written by the first wal-push or backup-push and checked by every later
// one, so a second cluster cannot mix its WAL into the archive.
type Identity struct {
	Format           int       `json:"format"`
	SystemIdentifier string    `json:"system_identifier"` // a uint64: a string keeps JSON readers from rounding it
	PGVersion        int       `json:"pg_version,omitempty"`
	WALSegmentSize   uint64    `json:"wal_segment_size,omitempty"`
	Created          time.Time `json:"created"`
}

const FormatVersion = 1

// ErrForeignCluster means the archive belongs to another database cluster.
var ErrForeignCluster = errors.New("archive belongs to another cluster")

// ErrNotAnArchive means the prefix holds no walnut.json: it is mistyped, or
// nothing was ever archived there. It never matches storage.ErrNotFound:
// an empty listing under a wrong prefix must not read as "not in the
// archive", which ends recovery early, or as "nothing to delete".
var ErrNotAnArchive = errors.New("no " + IdentityKey + ": not a walnut archive (nor a WAL-E one: no wal_005/ or basebackups_005/); check the prefix (wal-push and backup-push create one)")

// Require makes sure s is a walnut archive before a listing of it is
// believed. Only wal-push and backup-push, which may start a new archive,
// go without it.
func Require(ctx context.Context, s storage.Store) error {
	_, err := ReadIdentity(ctx, s)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// WAL-E wrote no walnut.json: its own directories make the prefix
		// an archive until walnut's first push adds one.
		ok, werr := hasWALE(ctx, s)
		if werr != nil {
			return werr
		}
		if ok {
			return nil
		}
		return ErrNotAnArchive
	case err != nil:
		return fmt.Errorf("read %s: %w", IdentityKey, err)
	}
	return nil
}

// ReadIdentity reads walnut.json.
func ReadIdentity(ctx context.Context, s storage.Store) (*Identity, error) {
	rc, err := s.Get(ctx, IdentityKey)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var id Identity
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&id); err != nil {
		return nil, fmt.Errorf("read %s: %w", IdentityKey, err)
	}
	if id.Format > FormatVersion {
		return nil, fmt.Errorf("%s: archive format %d is newer than this walnut understands (%d); upgrade walnut", IdentityKey, id.Format, FormatVersion)
	}
	return &id, nil
}

// CheckIdentity makes sure the archive belongs to sysid, creating
// walnut.json if the archive is new. The creation is conditional
// (storage.Create: an exclusive link on file://, If-None-Match or its
// like on the clouds), never a read and then a write: of two clusters
// taking one empty prefix at once, exactly one stores walnut.json, and the
// other reads it back and is refused.
func CheckIdentity(ctx context.Context, s storage.Store, sysid uint64, pgVersion int, segSize uint64) error {
	id, err := ReadIdentity(ctx, s)
	switch {
	case err == nil:
		return sameCluster(id, sysid)
	case !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("read %s: %w", IdentityKey, err)
	}
	b, err := json.MarshalIndent(Identity{
		Format:           FormatVersion,
		SystemIdentifier: strconv.FormatUint(sysid, 10),
		PGVersion:        pgVersion,
		WALSegmentSize:   segSize,
		Created:          time.Now().UTC(),
	}, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	err = storage.Create(ctx, s, IdentityKey, bytes.NewReader(b), int64(len(b)))
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, storage.ErrExists):
		return fmt.Errorf("store %s: %w", IdentityKey, err)
	}
	// Someone stored it since we looked: another cluster racing for the
	// prefix, another wal-push of this one, or this very call, whose first
	// attempt stored it and lost the answer before the retry decorator
	// tried again. What it says decides, not who wrote it.
	id, err = ReadIdentity(ctx, s)
	if err != nil {
		return fmt.Errorf("read %s: %w", IdentityKey, err)
	}
	return sameCluster(id, sysid)
}

// sameCluster refuses an archive whose walnut.json names another cluster.
// The system identifier alone decides: wal-push does not know the server's
// major version (it records none), and one cluster has one segment size.
func sameCluster(id *Identity, sysid uint64) error {
	if id.SystemIdentifier != strconv.FormatUint(sysid, 10) {
		return fmt.Errorf("%w: archive's %s has system identifier %s, this cluster has %d; use another prefix for this cluster",
			ErrForeignCluster, IdentityKey, id.SystemIdentifier, sysid)
	}
	return nil
}
