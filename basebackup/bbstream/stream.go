// Package bbstream reads the COPY stream of BASE_BACKUP, in the protocol
// of PostgreSQL 15 and later and in the older one, as a sequence of
// archives each read like a file.
package bbstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Stream reads the COPY stream BASE_BACKUP sends on PostgreSQL 15 and
// later: each CopyData starts with a type byte, 'n' opening an archive
// (one per tablespace), 'd' carrying its bytes, 'p' progress, 'm' opening
// the backup_manifest. Read returns the current archive's bytes and io.EOF
// where the next one starts.
//
// Before 15 the server sends one COPY per archive instead, raw
// bytes with no type byte, in the order its tablespace result set listed
// them, then (13 and 14) one COPY of the backup_manifest: the same
// archives, told apart by position rather than by header, so the feed
// reads both alike.
type Stream struct {
	ctx  context.Context // only to tell a cancellation from a broken stream
	conn *pgconn.PgConn
	buf  []byte // the unread rest of the last 'd' message; valid until the next receive
	next []byte // the 'n' or 'm' message that ended the current archive
	done bool   // CopyDone received

	old    bool      // the protocol before PostgreSQL 15
	queue  []Archive // old: the archives still to come, in order
	inCopy bool      // old: between a CopyOutResponse and its CopyDone
}

// New reads the stream of PostgreSQL 15 and later from conn, after
// pglogrepl.StartBaseBackup; ctx only tells a cancellation from a broken
// stream (UnblockOnCancel ends a blocked read).
func New(ctx context.Context, conn *pgconn.PgConn) *Stream {
	return &Stream{ctx: ctx, conn: conn}
}

// NewOld reads the stream of the protocol before PostgreSQL 15, which
// will send the archives listed, in that order.
func NewOld(ctx context.Context, conn *pgconn.PgConn, archives []Archive) *Stream {
	return &Stream{ctx: ctx, conn: conn, old: true, queue: archives}
}

// Archive is one archive of the stream: an 'n' or 'm' message, or its
// place in the old protocol's order.
type Archive struct {
	Manifest bool
	Name     string // "base.tar", "16385.tar"
	Location string // the tablespace's location; "" for the data directory
}

// Next skips to the start of the next archive; ok is false once the
// stream has ended (FinishBaseBackup reads what follows).
func (s *Stream) Next() (h Archive, ok bool, err error) {
	if s.old {
		return s.nextOld()
	}
	for s.next == nil && !s.done {
		s.buf = nil
		if err := s.receive(); err != nil {
			return h, false, err
		}
	}
	if s.done {
		return h, false, nil
	}
	msg := s.next
	s.next, s.buf = nil, nil
	if msg[0] == 'm' {
		return Archive{Manifest: true}, true, nil
	}
	parts := bytes.Split(msg[1:], []byte{0})
	if len(parts) < 2 {
		return h, false, fmt.Errorf("BASE_BACKUP: malformed new-archive message")
	}
	return Archive{Name: string(parts[0]), Location: string(parts[1])}, true, nil
}

// nextOld reads to the end of the current COPY, then to the start
// of the next, whose archive is the next in the queue.
func (s *Stream) nextOld() (h Archive, ok bool, err error) {
	for s.inCopy {
		s.buf = nil
		if err := s.receive(); err != nil {
			return h, false, err
		}
	}
	s.buf = nil
	if len(s.queue) == 0 {
		// What follows is the end position's result set: FinishBaseBackup's.
		return h, false, nil
	}
	for !s.inCopy {
		if err := s.receive(); err != nil {
			return h, false, err
		}
	}
	h, s.queue = s.queue[0], s.queue[1:]
	return h, true, nil
}

// ended says whether the current archive has been read to its end.
func (s *Stream) ended() bool {
	if s.old {
		return !s.inCopy
	}
	return s.next != nil || s.done
}

func (s *Stream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.ended() {
			return 0, io.EOF
		}
		if err := s.receive(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// receive reads one message: 'd' data becomes buf, 'n' and 'm' become
// next, progress is dropped.
func (s *Stream) receive() error {
	// Not s.ctx: pgconn watches a cancellable context with a goroutine
	// per call, which for tens of thousands of 32 KiB messages cost more
	// than the reading; the caller ends a blocked read on cancellation
	// with a deadline instead (UnblockOnCancel).
	msg, err := s.conn.ReceiveMessage(context.Background())
	if err != nil && s.ctx.Err() != nil {
		return s.ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("BASE_BACKUP stream: %w", err)
	}
	switch m := msg.(type) {
	case *pgproto3.CopyOutResponse:
		if s.old {
			if s.inCopy {
				return errors.New("BASE_BACKUP stream: a COPY started inside another")
			}
			s.inCopy = true
		}
	case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
	case *pgproto3.CopyData:
		if s.old {
			if !s.inCopy {
				return errors.New("BASE_BACKUP stream: data outside a COPY")
			}
			s.buf = m.Data
			return nil
		}
		if len(m.Data) == 0 {
			return errors.New("BASE_BACKUP stream: empty message")
		}
		switch m.Data[0] {
		case 'd':
			s.buf = m.Data[1:]
		case 'n', 'm':
			s.next = bytes.Clone(m.Data)
		case 'p':
		default:
			return fmt.Errorf("BASE_BACKUP stream: unknown message type %q", m.Data[0])
		}
	case *pgproto3.CopyDone:
		if s.old {
			s.inCopy = false
			return nil
		}
		s.done = true
	case *pgproto3.ErrorResponse:
		return fmt.Errorf("BASE_BACKUP: %w", pgconn.ErrorResponseToPgError(m))
	default:
		return fmt.Errorf("BASE_BACKUP stream: unexpected %T", msg)
	}
	return nil
}

// UnblockOnCancel makes a read blocked on conn fail once ctx is done;
// the returned function stops watching.
func UnblockOnCancel(ctx context.Context, conn *pgconn.PgConn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { conn.Conn().SetReadDeadline(time.Unix(1, 0)) })
}
