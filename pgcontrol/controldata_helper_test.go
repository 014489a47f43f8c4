package pgcontrol

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parseControldataOutput turns pg_controldata's "Label:   value" lines into a map.
func parseControldataOutput(t *testing.T, out string) map[string]string {
	t.Helper()
	m := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if len(m) < 30 {
		t.Fatalf("pg_controldata output has only %d fields:\n%s", len(m), out)
	}
	return m
}

// checkAgainstControldata compares every field of cd that pg_controldata
// prints with what it printed. pg_controldata must have run with LC_ALL=C
// and TZ=loc's zone so its timestamps can be compared.
func checkAgainstControldata(t *testing.T, cd *ControlData, want map[string]string, loc *time.Location) {
	t.Helper()
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	yesNo := map[bool]string{true: "yes", false: "no"}
	ctime := func(tm time.Time) string { return tm.In(loc).Format("Mon Jan _2 15:04:05 2006") }
	segName := WALFileName(cd.TimelineID, SegmentNumber(cd.Redo, uint64(cd.WALSegmentSize)), uint64(cd.WALSegmentSize))
	got := map[string]string{
		"pg_control version number":          u(uint64(cd.PGControlVersion)),
		"Catalog version number":             u(uint64(cd.CatalogVersion)),
		"Database system identifier":         u(cd.SystemIdentifier),
		"Database cluster state":             cd.State.String(),
		"pg_control last modified":           ctime(cd.Time),
		"Latest checkpoint location":         cd.CheckpointLSN.String(),
		"Latest checkpoint's REDO location":  cd.Redo.String(),
		"Latest checkpoint's REDO WAL file":  segName,
		"Latest checkpoint's TimeLineID":     u(uint64(cd.TimelineID)),
		"Latest checkpoint's PrevTimeLineID": u(uint64(cd.PrevTimelineID)),
		"Time of latest checkpoint":          ctime(cd.CheckpointTime),
		"Minimum recovery ending location":   cd.MinRecoveryPoint.String(),
		"Min recovery ending loc's timeline": u(uint64(cd.MinRecoveryPointTLI)),
		"Backup start location":              cd.BackupStartPoint.String(),
		"Backup end location":                cd.BackupEndPoint.String(),
		"End-of-backup record required":      yesNo[cd.BackupEndRequired],
		"Database block size":                u(uint64(cd.BlockSize)),
		"WAL block size":                     u(uint64(cd.WALBlockSize)),
		"Bytes per WAL segment":              u(uint64(cd.WALSegmentSize)),
		"Data page checksum version":         u(uint64(cd.DataChecksumVersion)),
	}
	for k, g := range got {
		w, ok := want[k]
		if !ok {
			t.Errorf("pg_controldata printed no %q", k)
			continue
		}
		if g != w {
			t.Errorf("%s: parsed %q, pg_controldata printed %q", k, g, w)
		}
	}
}
