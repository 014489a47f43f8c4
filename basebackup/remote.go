package basebackup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/pgcontrol"
)

// remotePiece bounds what one buffered stream item holds: files larger
// than this are stored in chunks of this size, so the stream reader can
// hand each piece to a free worker and move on. Parallel compression of
// one serial stream needs a piece per worker in memory; 1 MiB keeps peak
// RSS under 40 MiB (bench: 2 MiB pieces measured 41-43 MiB, 4 MiB 46-53),
// for 1,024 chunk entries per GiB in files.json.
const remotePiece = MinChunkSize

// PushRemote takes a base backup over the replication protocol
// (BASE_BACKUP, as pg_basebackup does), from a host that cannot read
// PGDATA. The tar streams the server sends are repacked into the same
// partitions, files.json, backup_manifest and sentinel as Push writes; the
// server's own backup_manifest is checked against what arrived and kept
// beside them (ServerManifestKey). o.DataDir must be empty.
func PushRemote(ctx context.Context, o Options) (_ *archive.Sentinel, err error) {
	if o.DataDir != "" {
		return nil, errors.New("--remote takes no PGDATA: the backup comes over the replication connection (PG* variables)")
	}
	o = withDefaults(o)
	log := o.Log
	enc := archive.Encoding{Codec: o.Codec, To: o.Encrypt}
	conn, facts, version, err := connectReplication(ctx, o.ConnString)
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if err := archive.CheckIdentity(ctx, o.Store, facts.SystemID, version/10000, facts.WALSegmentSize); err != nil {
		return nil, err
	}

	startTime := time.Now().UTC()
	res, err := pglogrepl.StartBaseBackup(ctx, conn, pglogrepl.BaseBackupOptions{
		Label: "walnut " + startTime.Format(time.RFC3339), Fast: o.FastCheckpoint,
		// walnut waits for its WAL in its own archive, with a timeout.
		NoWait: true, TablespaceMap: true, Manifest: true, ManifestChecksums: "CRC32C",
	})
	if err != nil {
		return nil, fmt.Errorf("BASE_BACKUP: %w", err)
	}
	startLSN, tli := pgcontrol.LSN(res.LSN), uint32(res.TimelineID)
	var tablespaces []archive.Tablespace
	oids := map[string]string{}
	for _, ts := range res.Tablespaces {
		oid := strconv.Itoa(int(ts.OID))
		tablespaces = append(tablespaces, archive.Tablespace{OID: oid, Name: oid, Location: ts.Location})
		oids[ts.Location] = oid
	}
	sn := newSentinel(startTime, startLSN, tli, facts, version, enc)
	sn.DataDir = facts.DataDir
	if _, err := o.Store.Stat(ctx, archive.SentinelKey(sn.Name)); err == nil {
		return nil, fmt.Errorf("backup %s already exists", sn.Name)
	}
	defer func() {
		if err != nil {
			removeParts(ctx, o, sn.Name)
		}
	}()
	if err := putRunning(ctx, o, sn); err != nil {
		return nil, err
	}
	log.Info("backup started", "name", sn.Name, "start_lsn", sn.StartLSN, "timeline", tli, "remote", true)

	p := &packer{store: o.Store, enc: enc, name: sn.Name, limit: o.PartitionSize, chunk: o.ChunkSize, log: log, progress: o.Progress}
	f := &remoteFeed{stream: &copyStream{ctx: ctx, conn: conn}, oids: oids, p: p,
		piece: remotePiece, pool: make(chan []byte, o.Concurrency+2), got: map[string]arrived{}}
	stopWatch := unblockOnCancel(ctx, conn)
	err = p.runFeed(ctx, o.Concurrency, f.feed)
	stopWatch()
	if err != nil {
		return nil, err
	}
	end, err := pglogrepl.FinishBaseBackup(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("BASE_BACKUP end: %w", err)
	}
	if f.manifest == nil {
		return nil, errors.New("the server sent no backup_manifest")
	}
	if err := checkServerManifest(f.manifest, f.got); err != nil {
		return nil, err
	}
	if f.label == nil || f.control == nil {
		return nil, errors.New("the server's stream lacked backup_label or global/pg_control")
	}
	stopSeg := setStop(sn, pgcontrol.LSN(end.LSN))
	if err := waitArchived(ctx, o.Store, tli, pgcontrol.SegmentNumber(startLSN, sn.WALSegmentSize), stopSeg, sn.WALSegmentSize, o.ArchiveTimeout, log); err != nil {
		return nil, err
	}
	stored, err := archive.PutStream(ctx, o.Store, ServerManifestKey(sn.Name, enc.Ext()), enc, func(w io.Writer) error {
		_, err := w.Write(f.manifest)
		return err
	})
	if err != nil {
		return nil, err
	}
	p.stored.Add(stored)
	if err := p.seal(ctx, sn, tablespaces, string(f.label), string(f.spcmap), f.control); err != nil {
		return nil, err
	}
	return sn, nil
}

// ServerManifestKey is where a remote backup keeps the backup_manifest
// the server sent; the backup_manifest restore uses is walnut's own, which
// matches what backup-fetch writes (no standby.signal, a rewritten
// tablespace_map).
func ServerManifestKey(name, ext string) string {
	return archive.BackupPrefix(name) + "server_backup_manifest" + ext
}

// connectReplication opens a physical replication connection and reads
// what the sentinel and the identity check need.
func connectReplication(ctx context.Context, connString string) (*pgconn.PgConn, serverFacts, int, error) {
	var facts serverFacts
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return nil, facts, 0, fmt.Errorf("connection settings (PG* variables): %w", err)
	}
	cfg.RuntimeParams["replication"] = "true"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "walnut backup-push"
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, facts, 0, fmt.Errorf("connect to PostgreSQL for replication: %w", err)
	}
	fail := func(err error) (*pgconn.PgConn, serverFacts, int, error) {
		conn.Close(context.WithoutCancel(ctx))
		return nil, facts, 0, err
	}
	v, err := show(ctx, conn, "server_version_num")
	if err != nil {
		return fail(err)
	}
	version, err := strconv.Atoi(v)
	if err != nil {
		return fail(fmt.Errorf("server_version_num %q: %w", v, err))
	}
	if err := pgcontrol.CheckServerVersion(version); err != nil {
		return fail(err)
	}
	if version < 150000 {
		return fail(fmt.Errorf("backup-push --remote needs PostgreSQL 15 or later (the server is %d); take the backup on the database host", version))
	}
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		return fail(fmt.Errorf("IDENTIFY_SYSTEM: %w", err))
	}
	if facts.SystemID, err = strconv.ParseUint(sys.SystemID, 10, 64); err != nil {
		return fail(fmt.Errorf("system identifier %q: %w", sys.SystemID, err))
	}
	seg, err := show(ctx, conn, "wal_segment_size")
	if err != nil {
		return fail(err)
	}
	if facts.WALSegmentSize, err = parseSize(seg); err != nil {
		return fail(fmt.Errorf("wal_segment_size %q: %w", seg, err))
	}
	// Only for the sentinel's record: a role without the right to read
	// it still backs up.
	facts.DataDir, _ = show(ctx, conn, "data_directory")
	return conn, facts, version, nil
}

func show(ctx context.Context, conn *pgconn.PgConn, setting string) (string, error) {
	res, err := conn.Exec(ctx, "SHOW "+setting).ReadAll()
	if err != nil {
		return "", fmt.Errorf("SHOW %s: %w", setting, err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		return "", fmt.Errorf("SHOW %s: unexpected result", setting)
	}
	return string(res[0].Rows[0][0]), nil
}

// parseSize reads a size as SHOW prints it: "16MB", "1GB".
func parseSize(s string) (uint64, error) {
	units := []struct {
		suffix string
		mult   uint64
	}{{"kB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}}
	mult := uint64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, errors.New("not a size")
	}
	return n * mult, nil
}

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
		Host: sn.Hostname, PID: os.Getpid(), StartTime: sn.StartTime}
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
