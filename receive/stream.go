package receive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/pgshow"
)

// receiver runs replication sessions, one per connection.
type receiver struct {
	o    Options
	segs *segments
	// connected: a session got as far as streaming once, so later
	// failures of any kind are retried.
	connected bool
	// streamed: the last session received WAL (resets the backoff).
	streamed bool
	// slotReady: the slot exists; reconnections need not ask.
	slotReady bool
	// skipTo is set when the server no longer has the WAL where the
	// archive ends: the next session starts at the server's position.
	skipTo bool
	// dropSlot: the server invalidated the slot; the next session drops
	// it before creating it again.
	dropSlot bool
}

// pollInterval bounds how long a stored position waits before the
// server hears it in synchronous mode, where a commit waits for it.
const pollInterval = 20 * time.Millisecond

func (r *receiver) session(ctx context.Context) error {
	cfg, err := pgconn.ParseConfig(r.o.ConnString)
	if err != nil {
		return fmt.Errorf("%w: connection settings: %v", ErrSetup, err)
	}
	cfg.RuntimeParams["replication"] = "true"
	if cfg.RuntimeParams["application_name"] == "" {
		// The name synchronous_standby_names lists.
		cfg.RuntimeParams["application_name"] = "walnut"
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "28") || pe.Code == "3D000") {
			return fmt.Errorf("%w: %v", ErrSetup, err)
		}
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()

	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		return fmt.Errorf("IDENTIFY_SYSTEM: %w", err)
	}
	if err := r.checkServer(ctx, conn, sys); err != nil {
		return err
	}
	if err := r.ensureSlot(ctx, conn); err != nil {
		return err
	}
	tli, start, err := r.startPoint(ctx, conn, sys)
	if err != nil {
		return err
	}
	for {
		next, err := r.stream(ctx, conn, tli, start)
		if err != nil {
			return err
		}
		// The timeline ended (the server we stream from was promoted, or
		// we caught up with a timeline it left): the rest of the open
		// segment is on the next timeline, from the segment's start.
		if err := r.segs.endTimeline(); err != nil {
			return err
		}
		if err := r.storeHistory(ctx, conn, next.tli); err != nil {
			return err
		}
		tli = next.tli
		start = pgcontrol.SegmentStart(pgcontrol.SegmentNumber(next.lsn, r.segs.segSize), r.segs.segSize)
		r.o.Log.Info("following the next timeline", "timeline", tli, "switch_point", next.lsn.String())
	}
}

// checkServer learns the segment size and refuses a server of an
// unsupported version or another cluster than the archive's.
func (r *receiver) checkServer(ctx context.Context, conn *pgconn.PgConn, sys pglogrepl.IdentifySystemResult) error {
	n, err := pgshow.ServerVersion(ctx, conn)
	if err != nil {
		return err
	}
	if err := pgcontrol.CheckServerVersion(n); err != nil {
		return fmt.Errorf("%w: %v", ErrSetup, err)
	}
	segSize, err := pgshow.WALSegmentSize(ctx, conn)
	if err != nil {
		return err
	}
	if !pgcontrol.ValidSegmentSize(segSize) {
		return fmt.Errorf("%w: wal_segment_size %d: not a WAL segment size PostgreSQL allows", ErrSetup, segSize)
	}
	if r.segs.segSize != 0 && r.segs.segSize != segSize {
		return fmt.Errorf("%w: the server's WAL segments are %d bytes, they were %d", ErrSetup, segSize, r.segs.segSize)
	}
	r.segs.segSize = segSize
	sysid, err := strconv.ParseUint(sys.SystemID, 10, 64)
	if err != nil {
		return fmt.Errorf("system identifier %q: %w", sys.SystemID, err)
	}
	err = archive.CheckIdentity(ctx, r.o.Store, sysid, n/10000, segSize)
	if errors.Is(err, archive.ErrForeignCluster) {
		return fmt.Errorf("%w: %v", ErrSetup, err)
	}
	if err != nil {
		// Every upload checks it again; streaming into the work directory
		// may go on while the store is away.
		r.o.Log.Warn("could not check the archive's identity", "err", err)
	}
	return nil
}

// ensureSlot creates the physical slot unless it exists. RESERVE_WAL
// makes the server keep WAL from now on, before the first status update.
func (r *receiver) ensureSlot(ctx context.Context, conn *pgconn.PgConn) error {
	if r.slotReady {
		return nil
	}
	if r.dropSlot {
		if _, err := conn.Exec(ctx, "DROP_REPLICATION_SLOT "+r.o.Slot).ReadAll(); err != nil {
			return fmt.Errorf("drop the invalidated replication slot %s: %w", r.o.Slot, err)
		}
		r.dropSlot = false
	}
	_, err := conn.Exec(ctx, "CREATE_REPLICATION_SLOT "+r.o.Slot+" PHYSICAL RESERVE_WAL").ReadAll()
	var pe *pgconn.PgError
	switch {
	case err == nil:
		r.o.Log.Info("created the replication slot", "slot", r.o.Slot)
		r.slotReady = true
		return nil
	case errors.As(err, &pe) && pe.Code == "42710":
		r.slotReady = true
		return nil
	}
	return fmt.Errorf("create replication slot %s: %w", r.o.Slot, err)
}

// timelineSwitch is where the server says a timeline ended.
type timelineSwitch struct {
	tli uint32
	lsn pgcontrol.LSN
}

// startPoint is where this session streams from: where the last one
// stopped, else the start of the first segment the archive lacks on the
// server's timeline path, else (empty archive, or WAL the server has no
// longer) the start of the server's current segment.
func (r *receiver) startPoint(ctx context.Context, conn *pgconn.PgConn, sys pglogrepl.IdentifySystemResult) (uint32, pgcontrol.LSN, error) {
	if tli, lsn, ok := r.segs.resumePoint(); ok {
		return tli, lsn, nil
	}
	segSize := r.segs.segSize
	current := uint32(sys.Timeline)
	here := pgcontrol.SegmentStart(pgcontrol.SegmentNumber(pgcontrol.LSN(sys.XLogPos), segSize), segSize)
	var history []pgcontrol.HistoryEntry
	if current > 1 {
		h, err := r.fetchHistory(ctx, conn, current)
		if err != nil {
			return 0, 0, err
		}
		history = h
	}
	if r.skipTo {
		r.skipTo = false
		return current, here, nil
	}
	end, err := archiveEnd(ctx, r.o.Store, history, current, segSize)
	if err != nil {
		return 0, 0, err
	}
	if end == 0 || end > here {
		r.o.Log.Info("streaming from the server's current segment", "lsn", here.String(), "timeline", current)
		return current, here, nil
	}
	tli := timelineOf(end, history, current)
	r.o.Log.Info("streaming from where the archive ends", "lsn", end.String(), "timeline", tli)
	return tli, end, nil
}

// fetchHistory reads a timeline's history file from the server and
// queues it for the archive.
func (r *receiver) fetchHistory(ctx context.Context, conn *pgconn.PgConn, tli uint32) ([]pgcontrol.HistoryEntry, error) {
	h, err := pglogrepl.TimelineHistory(ctx, conn, int32(tli))
	if err != nil {
		return nil, fmt.Errorf("TIMELINE_HISTORY %d: %w", tli, err)
	}
	entries, err := pgcontrol.ParseHistory(strings.NewReader(string(h.Content)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.FileName, err)
	}
	name := pgcontrol.HistoryFileName(tli)
	if h.FileName != name {
		return nil, fmt.Errorf("TIMELINE_HISTORY %d answered %q", tli, h.FileName)
	}
	path := filepath.Join(r.o.Dir, name)
	if err := os.WriteFile(path, h.Content, 0o600); err != nil {
		return nil, err
	}
	r.segs.addFile(path)
	return entries, nil
}

func (r *receiver) storeHistory(ctx context.Context, conn *pgconn.PgConn, tli uint32) error {
	_, err := r.fetchHistory(ctx, conn, tli)
	return err
}

// timelineOf is the timeline that holds lsn on the path history describes.
func timelineOf(lsn pgcontrol.LSN, history []pgcontrol.HistoryEntry, current uint32) uint32 {
	for _, e := range history {
		if lsn < e.SwitchPoint {
			return e.ParentTLI
		}
	}
	return current
}

// lostWAL reports whether err says the server no longer has the WAL
// asked for. The server answers so after START_REPLICATION was accepted,
// in the stream. Retrying the same position would loop forever: the next
// session starts at the server's current segment, and the gap is an
// ERROR in the log (wal-verify and walnut status report it as well).
func (r *receiver) lostWAL(err error, start pgcontrol.LSN) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "58P01" {
		return false
	}
	r.skipTo = true
	r.o.Log.Error("the server no longer has the WAL where streaming was to go on: the archive will have a gap; take a new base backup", "lsn", start.String(), "err", pe.Message)
	return true
}

// slotInvalidated reports whether err is the server refusing the slot
// because it invalidated it (max_slot_wal_keep_size, or an idle timeout)
// and removed WAL the slot was keeping. PostgreSQL 18 refuses such a slot
// for good; older servers take it and report the missing WAL, which
// lostWAL handles. Retrying would loop forever, so the slot, walnut's own
// and of no use now, is dropped and created anew by the next session,
// which streams from the server's current segment. The gap is an ERROR in
// the log. Only the server's English wording is recognised: with other
// lc_messages the refusal is retried and logged as before.
func (r *receiver) slotInvalidated(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "55000" ||
		!strings.Contains(pe.Detail, "invalidated") && !strings.Contains(pe.Message, "can no longer") {
		return false
	}
	r.o.Log.Error("the server invalidated the replication slot and removed WAL it kept for walnut: the archive will have a gap; the slot is created anew; take a new base backup",
		"slot", r.o.Slot, "err", pe.Message, "detail", pe.Detail)
	r.slotReady = false
	r.dropSlot = true
	r.skipTo = true
	return true
}

// stream runs START_REPLICATION from start on tli until the timeline ends
// (returned) or something fails.
func (r *receiver) stream(ctx context.Context, conn *pgconn.PgConn, tli uint32, start pgcontrol.LSN) (timelineSwitch, error) {
	err := pglogrepl.StartReplication(ctx, conn, r.o.Slot, pglogrepl.LSN(start), pglogrepl.StartReplicationOptions{
		Timeline: int32(tli), Mode: pglogrepl.PhysicalReplication,
	})
	if nextTLI, nextLSN, ok := pglogrepl.IsErrEndTimeline(err); ok {
		return timelineSwitch{tli: uint32(nextTLI), lsn: pgcontrol.LSN(nextLSN)}, nil
	}
	r.lostWAL(err, start)
	if r.slotInvalidated(err) {
		// What arrived of the open segment is kept as its partial.
		if cerr := r.segs.endTimeline(); cerr != nil {
			return timelineSwitch{}, cerr
		}
	}
	if err != nil {
		return timelineSwitch{}, fmt.Errorf("START_REPLICATION at %s on timeline %d: %w", start, tli, err)
	}
	if err := r.segs.begin(tli, start); err != nil {
		return timelineSwitch{}, err
	}
	r.connected = true
	r.o.Log.Info("streaming", "lsn", start.String(), "timeline", tli, "slot", r.o.Slot)

	var sentWritten, sentStored pgcontrol.LSN
	nextStatus := time.Now()
	sendStatus := func(force bool) error {
		written, stored := r.segs.positions()
		if !force && written == sentWritten && stored == sentStored && time.Now().Before(nextStatus) {
			return nil
		}
		err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{
			WALWritePosition: pglogrepl.LSN(max(written, stored)),
			WALFlushPosition: pglogrepl.LSN(stored),
			WALApplyPosition: pglogrepl.LSN(stored),
		})
		if err != nil {
			return fmt.Errorf("send status: %w", err)
		}
		sentWritten, sentStored = written, stored
		nextStatus = time.Now().Add(r.o.StatusInterval)
		return nil
	}
	for {
		if err := r.segs.failure(); err != nil {
			return timelineSwitch{}, err
		}
		if err := sendStatus(false); err != nil {
			return timelineSwitch{}, err
		}
		wait := time.Until(nextStatus)
		if r.o.Synchronous {
			wait = min(wait, pollInterval)
		}
		rctx, cancel := context.WithTimeout(ctx, max(wait, time.Millisecond))
		msg, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if pgconn.Timeout(err) && ctx.Err() == nil {
				continue
			}
			return timelineSwitch{}, fmt.Errorf("receive: %w", err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			if len(msg.Data) == 0 {
				continue
			}
			switch msg.Data[0] {
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
				if err != nil {
					return timelineSwitch{}, err
				}
				if err := r.segs.write(pgcontrol.LSN(xld.WALStart), xld.WALData); err != nil {
					return timelineSwitch{}, err
				}
				r.streamed = true
				if r.o.Synchronous {
					signal(r.segs.wake)
				}
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
				if err != nil {
					return timelineSwitch{}, err
				}
				if ka.ReplyRequested {
					if err := sendStatus(true); err != nil {
						return timelineSwitch{}, err
					}
				}
			}
		case *pgproto3.CopyDone:
			res, err := pglogrepl.SendStandbyCopyDone(ctx, conn)
			if err != nil {
				return timelineSwitch{}, fmt.Errorf("end of timeline %d: %w", tli, err)
			}
			if res == nil {
				return timelineSwitch{}, fmt.Errorf("timeline %d ended without naming the next", tli)
			}
			return timelineSwitch{tli: uint32(res.Timeline), lsn: pgcontrol.LSN(res.LSN)}, nil
		case *pgproto3.ErrorResponse:
			err := pgconn.ErrorResponseToPgError(msg)
			if r.lostWAL(err, start) {
				// What arrived of the open segment is kept as its partial.
				if cerr := r.segs.endTimeline(); cerr != nil {
					return timelineSwitch{}, cerr
				}
			}
			return timelineSwitch{}, err
		}
	}
}
