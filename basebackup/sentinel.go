package basebackup

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
)

// setStop records the backup's stop position and returns the segment
// holding its last byte.
func setStop(sn *archive.Sentinel, stopLSN pgcontrol.LSN) uint64 {
	seg := sn.WALSegmentSize
	sn.FinishLSN = stopLSN.String()
	stopSeg := pgcontrol.SegmentNumber(stopLSN-1, seg)
	sn.StopSegment = pgcontrol.WALFileName(sn.Timeline, stopSeg, seg)
	sn.StopOffset = fmt.Sprintf("%08X", uint64(stopLSN)-stopSeg*seg)
	return stopSeg
}

func newSentinel(startTime time.Time, startLSN pgcontrol.LSN, tli uint32, facts serverFacts, version int, enc archive.Encoding) *archive.Sentinel {
	seg := facts.WALSegmentSize
	sn := &archive.Sentinel{
		Format:           archive.FormatVersion,
		StartTime:        startTime,
		StartLSN:         startLSN.String(),
		Timeline:         tli,
		StartSegment:     pgcontrol.WALFileName(tli, pgcontrol.SegmentNumber(startLSN, seg), seg),
		StartOffset:      fmt.Sprintf("%08X", uint64(startLSN)%seg),
		SystemIdentifier: strconv.FormatUint(facts.SystemID, 10),
		PGVersion:        version,
		WALSegmentSize:   seg,
		Compression:      enc.Codec.Name(),
		Encrypted:        enc.To != nil,
	}
	sn.Name = "base_" + sn.StartSegment + "_" + sn.StartOffset
	sn.Hostname, _ = os.Hostname()
	sn.ManifestKey = archive.ManifestKey(sn.Name, enc.Ext())
	sn.ControlKey = archive.ControlKey(sn.Name, enc.Ext())
	return sn
}

// putRunning writes the running-backup marker before any part: a delete
// planned from here on sees a running backup, and keeps it and its WAL,
// even while every part is still an upload in flight that no listing
// shows.
func putRunning(ctx context.Context, o Options, sn *archive.Sentinel) error {
	running := archive.Running{Name: sn.Name, StartLSN: sn.StartLSN, StartSegment: sn.StartSegment,
		Host: sn.Hostname, PID: os.Getpid(), StartTime: sn.StartTime, DeltaBase: sn.DeltaBase}
	_, err := archive.PutJSON(ctx, o.Store, archive.RunningKey(sn.Name), running)
	return err
}

// removeParts deletes what a failed backup stored: without a sentinel the
// parts are invisible, and removing them now saves a later delete
// garbage the work.
func removeParts(ctx context.Context, o Options, name string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	deletePrefix(dctx, o.Store, archive.BackupPrefix(name), o.Log)
}
