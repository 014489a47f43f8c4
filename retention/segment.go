package retention

import (
	"context"
	"strconv"

	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// BackupFromSegment turns WAL-E's `delete before SEGMENT` into walnut's
// `before NAME`: the oldest backup (by finish time) that starts at or after
// the segment's position. WAL-E compared positions without the timeline,
// and so does this. With no such backup every backup would go, which is
// delete everything's job, not a side effect of a segment name.
// It returns "" when there is none, for the caller to refuse.
func BackupFromSegment(ctx context.Context, store storage.Store, segment string) (string, error) {
	list, err := List(ctx, store)
	if err != nil {
		return "", err
	}
	want := segmentPosition(segment)
	for _, sn := range list {
		if pgcontrol.IsWALFileName(sn.StartSegment) && segmentPosition(sn.StartSegment) >= want {
			return sn.Name, nil
		}
	}
	return "", nil
}

// segmentPosition is a WAL file name's position without its timeline:
// the log and segment numbers, whatever the segment size.
func segmentPosition(name string) uint64 {
	n, _ := strconv.ParseUint(name[8:24], 16, 64)
	return n
}
