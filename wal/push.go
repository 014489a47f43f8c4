package wal

import (
	"context"

	"github.com/walnut-pg/walnut/archive"
)

// PushOptions is what wal-push needs. The storing is the archive core's
// (archive.PutWAL), since wal-receive stores its files through the same
// code.
type PushOptions = archive.PutWALOptions

// PushResult says what wal-push did.
type PushResult = archive.PutWALResult

// ErrConflict means a different file is already archived under the
// same name: archiving must stop until a human looks.
var ErrConflict = archive.ErrWALConflict

// Push stores one WAL segment, timeline history, backup history or
// partial segment. It returns only once the object is durable; pushing the
// same content again succeeds without storing it twice.
func Push(ctx context.Context, o PushOptions) (PushResult, error) {
	return archive.PutWAL(ctx, o)
}
