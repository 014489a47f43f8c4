package basebackup

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

// copyStream reads the COPY stream BASE_BACKUP sends on PostgreSQL 15 and
// later: each CopyData starts with a type byte, 'n' opening an archive
// (one per tablespace), 'd' carrying its bytes, 'p' progress, 'm' opening
// the backup_manifest. Read returns the current archive's bytes and io.EOF
// where the next one starts.
type copyStream struct {
	ctx  context.Context // only to tell a cancellation from a broken stream
	conn *pgconn.PgConn
	buf  []byte // the unread rest of the last 'd' message; valid until the next receive
	next []byte // the 'n' or 'm' message that ended the current archive
	done bool   // CopyDone received
}

// archiveHeader is an 'n' or 'm' message.
type archiveHeader struct {
	Manifest bool
	Name     string // "base.tar", "16385.tar"
	Location string // the tablespace's location; "" for the data directory
}

// nextArchive skips to the next 'n' or 'm' message; ok is false once the
// COPY has ended.
func (s *copyStream) nextArchive() (h archiveHeader, ok bool, err error) {
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
		return archiveHeader{Manifest: true}, true, nil
	}
	parts := bytes.Split(msg[1:], []byte{0})
	if len(parts) < 2 {
		return h, false, fmt.Errorf("BASE_BACKUP: malformed new-archive message")
	}
	return archiveHeader{Name: string(parts[0]), Location: string(parts[1])}, true, nil
}

func (s *copyStream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.next != nil || s.done {
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
func (s *copyStream) receive() error {
	// Not s.ctx: pgconn watches a cancellable context with a goroutine
	// per call, which for tens of thousands of 32 KiB messages cost more
	// than the reading; PushRemote ends a blocked read on cancellation
	// with a deadline instead (unblockOnCancel).
	msg, err := s.conn.ReceiveMessage(context.Background())
	if err != nil && s.ctx.Err() != nil {
		return s.ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("BASE_BACKUP stream: %w", err)
	}
	switch m := msg.(type) {
	case *pgproto3.CopyOutResponse, *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
	case *pgproto3.CopyData:
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
		s.done = true
	case *pgproto3.ErrorResponse:
		return fmt.Errorf("BASE_BACKUP: %w", pgconn.ErrorResponseToPgError(m))
	default:
		return fmt.Errorf("BASE_BACKUP stream: unexpected %T", msg)
	}
	return nil
}

// unblockOnCancel makes a read blocked on conn fail once ctx is done;
// the returned function stops watching.
func unblockOnCancel(ctx context.Context, conn *pgconn.PgConn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { conn.Conn().SetReadDeadline(time.Unix(1, 0)) })
}
