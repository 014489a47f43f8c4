package receive

import (
	"context"
	"fmt"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// archiveEnd is the end of the newest whole segment archived on the
// timeline path that history describes (0: none). A segment counts on the
// timeline that owns its start, so a copy of an old timeline's segment
// that another path archived is not taken for this one's.
func archiveEnd(ctx context.Context, s storage.Store, history []pgcontrol.HistoryEntry, current uint32, segSize uint64) (pgcontrol.LSN, error) {
	tlis := []uint32{current}
	for _, e := range history {
		tlis = append(tlis, e.ParentTLI)
	}
	var end pgcontrol.LSN
	for _, tli := range tlis {
		prefix := fmt.Sprintf("%s%08X", archive.WALDir, tli)
		err := s.List(ctx, prefix, func(oi storage.ObjectInfo) error {
			o, err := archive.ParseWALKey(oi.Key)
			if err != nil || !pgcontrol.IsWALFileName(o.Name) {
				return nil
			}
			t, segNo, err := pgcontrol.ParseWALFileName(o.Name, segSize)
			if err != nil || t != tli {
				return nil
			}
			start := pgcontrol.SegmentStart(segNo, segSize)
			if timelineOf(start, history, current) != tli {
				return nil
			}
			end = max(end, pgcontrol.SegmentStart(segNo+1, segSize))
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("list %s: %w", prefix, err)
		}
	}
	return end, nil
}
