package receive

import (
	"bytes"
	"context"
	"testing"

	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage/mem"
)

// The start point on a timeline path: a segment counts on the timeline
// that owns its start, and the end of the newest one is where streaming
// resumes, on the timeline that holds that position.
func TestArchiveEndAlongTimelinePath(t *testing.T) {
	const seg = 16 << 20
	ctx := context.Background()
	s := mem.New()
	put := func(name string) {
		if err := s.Put(ctx, "wal/"+name+"-0123456789abcdef.zst", bytes.NewReader(nil), 0); err != nil {
			t.Fatal(err)
		}
	}
	// Timeline 1 ended inside segment 5 (0/5000100); timeline 2 began there.
	history := []pgcontrol.HistoryEntry{{ParentTLI: 1, SwitchPoint: 0x5000100}}
	end, err := archiveEnd(ctx, s, history, 2, seg)
	if err != nil || end != 0 {
		t.Fatalf("empty archive: %s, %v", end, err)
	}
	put("000000010000000000000003")
	put("000000010000000000000004")
	put("000000010000000000000005.partial")
	put("00000001.history") // not a segment
	if end, _ = archiveEnd(ctx, s, history, 2, seg); end != 0x5000000 || timelineOf(end, history, 2) != 1 {
		t.Fatalf("archive to 1/4: end %s on timeline %d, want 0/5000000 on 1", end, timelineOf(end, history, 2))
	}
	// Timeline 2's copy of segment 5 starts before the switch: it is
	// timeline 1's position; timeline 2's own segments count from 6 on.
	put("000000020000000000000005")
	if end, _ = archiveEnd(ctx, s, history, 2, seg); end != 0x5000000 {
		t.Fatalf("with 2/5: end %s, want 0/5000000", end)
	}
	put("000000020000000000000006")
	put("000000030000000000000009") // another branch, not on the path
	if end, _ = archiveEnd(ctx, s, history, 2, seg); end != 0x7000000 || timelineOf(end, history, 2) != 2 {
		t.Fatalf("with 2/6: end %s on timeline %d, want 0/7000000 on 2", end, timelineOf(end, history, 2))
	}
}
