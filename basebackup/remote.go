package basebackup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/basebackup/bbstream"
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
// server's own backup_manifest (PostgreSQL 13 and later) is checked
// against what arrived and kept beside them (ServerManifestKey). Servers
// before 15 speak the older BASE_BACKUP protocol (bbstream.NewOld). o.DataDir
// must be empty.
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

	// PostgreSQL 12 sends no backup_manifest; 13 is the first to.
	serverManifest := version >= 130000
	startTime := time.Now().UTC()
	res, err := pglogrepl.StartBaseBackup(ctx, conn, pglogrepl.BaseBackupOptions{
		Label: "walnut " + startTime.Format(time.RFC3339), Fast: o.FastCheckpoint,
		// walnut waits for its WAL in its own archive, with a timeout.
		NoWait: true, TablespaceMap: true, Manifest: serverManifest, ManifestChecksums: "CRC32C",
	})
	if err != nil {
		return nil, fmt.Errorf("BASE_BACKUP: %w", err)
	}
	startLSN, tli := pgcontrol.LSN(res.LSN), uint32(res.TimelineID)
	var tablespaces []archive.Tablespace
	var archives []bbstream.Archive
	oids := map[string]string{}
	for _, ts := range res.Tablespaces {
		oid := strconv.Itoa(int(ts.OID))
		tablespaces = append(tablespaces, archive.Tablespace{OID: oid, Name: oid, Location: ts.Location})
		oids[ts.Location] = oid
		archives = append(archives, bbstream.Archive{Name: oid + ".tar", Location: ts.Location})
	}
	stream := bbstream.New(ctx, conn)
	if version < 150000 {
		// Before 15 the data directory's archive comes after the
		// tablespaces', as its row (no OID) does in the result set.
		archives = append(archives, bbstream.Archive{Name: "base.tar"})
		if serverManifest {
			archives = append(archives, bbstream.Archive{Manifest: true})
		}
		stream = bbstream.NewOld(ctx, conn, archives)
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
	f := &remoteFeed{stream: stream, oids: oids, p: p,
		piece: remotePiece, pool: make(chan []byte, o.Concurrency+2), got: map[string]arrived{}}
	stopWatch := bbstream.UnblockOnCancel(ctx, conn)
	err = p.runFeed(ctx, o.Concurrency, f.feed)
	stopWatch()
	if err != nil {
		return nil, err
	}
	end, err := pglogrepl.FinishBaseBackup(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("BASE_BACKUP end: %w", err)
	}
	switch {
	case !serverManifest:
		log.Info("PostgreSQL 12 sends no backup_manifest: the files received are not checked against the server's list", "name", sn.Name)
	case f.manifest == nil:
		return nil, errors.New("the server sent no backup_manifest")
	default:
		if err := checkServerManifest(f.manifest, f.got); err != nil {
			return nil, err
		}
	}
	if f.label == nil || f.control == nil {
		return nil, errors.New("the server's stream lacked backup_label or global/pg_control")
	}
	stopSeg := setStop(sn, pgcontrol.LSN(end.LSN))
	if err := waitArchived(ctx, o.Store, tli, pgcontrol.SegmentNumber(startLSN, sn.WALSegmentSize), stopSeg, sn.WALSegmentSize, o.ArchiveTimeout, log); err != nil {
		return nil, err
	}
	if serverManifest {
		stored, err := archive.PutStream(ctx, o.Store, ServerManifestKey(sn.Name, enc.Ext()), enc, func(w io.Writer) error {
			_, err := w.Write(f.manifest)
			return err
		})
		if err != nil {
			return nil, err
		}
		p.stored.Add(stored)
	}
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
