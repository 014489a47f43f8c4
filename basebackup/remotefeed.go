package basebackup

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/basebackup/bbstream"
)

// smallFile is the size up to which a member gets a buffer of its own
// rather than one from the pool: most of a cluster's files are small, and
// a pooled 1 MiB buffer each would stall the reader behind the workers.
const smallFile = 64 << 10

// maxServerManifest bounds the backup_manifest held in memory (about
// 200 bytes a file: a million files).
const maxServerManifest = 256 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// remoteFeed turns the archives of a BASE_BACKUP stream into packer items.
// Each member is read into memory (large files a piece at a time, each a
// chunk), so the reader hands it to a free worker and reads on while the
// workers compress and upload: the stream is never the only thing working,
// and memory stays at the pool's few pieces.
type remoteFeed struct {
	stream *bbstream.Stream
	oids   map[string]string // tablespace location -> OID
	p      *packer
	piece  int64
	pool   chan []byte // free piece buffers; made lazily up to cap
	made   int
	got    map[string]arrived
	// From the data directory's archive: what pg_control.tar holds.
	label, spcmap, control []byte
	manifest               []byte
}

func (f *remoteFeed) feed(ctx context.Context, send func(walkItem) error) error {
	for {
		h, ok, err := f.stream.Next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if h.Manifest {
			if f.manifest, err = io.ReadAll(io.LimitReader(f.stream, maxServerManifest)); err != nil {
				return fmt.Errorf("backup_manifest: %w", err)
			}
			continue
		}
		prefix := ""
		if h.Location != "" {
			oid, ok := f.oids[h.Location]
			if !ok {
				return fmt.Errorf("BASE_BACKUP sent archive %s for %s, which is not among its tablespaces", h.Name, h.Location)
			}
			prefix = path.Join("pg_tblspc", oid)
		}
		if err := f.archive(ctx, send, prefix); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
}

// archive reads one tar archive; prefix is "" for the data directory and
// pg_tblspc/<oid> for a tablespace.
func (f *remoteFeed) archive(ctx context.Context, send func(walkItem) error, prefix string) error {
	tr := tar.NewReader(f.stream)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		// PostgreSQL names pg_wal's entries "./pg_wal/...".
		rel := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		if !fs.ValidPath(rel) || rel == "." {
			// Nothing may land outside its tablespace, or the data directory.
			return fmt.Errorf("member %q: not a plain relative path", hdr.Name)
		}
		name := path.Join(prefix, rel)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := send(walkItem{Name: name, Info: hdr.FileInfo()}); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := f.file(ctx, send, name, prefix == "", hdr, tr); err != nil {
				return err
			}
		case tar.TypeSymlink:
			// The tablespace links: restore makes them from files.json's
			// tablespaces. The server sends no other link.
			if path.Dir(name) != "pg_tblspc" || prefix != "" {
				return fmt.Errorf("member %s: a symbolic link outside pg_tblspc", name)
			}
		default:
			return fmt.Errorf("member %s: tar type %q not expected in a base backup", name, hdr.Typeflag)
		}
	}
}

func (f *remoteFeed) file(ctx context.Context, send func(walkItem) error, name string, top bool, hdr *tar.Header, tr io.Reader) error {
	crc := crc32.New(castagnoli)
	r := io.TeeReader(tr, crc)
	defer func() { f.got[name] = arrived{Size: hdr.Size, CRC32C: crc.Sum32()} }()
	if top {
		var keep *[]byte
		switch name {
		case "backup_label":
			keep = &f.label
		case "tablespace_map":
			keep = &f.spcmap
		case archive.ControlFile:
			keep = &f.control
		}
		if keep != nil {
			// pg_control.tar's, stored last.
			b := make([]byte, hdr.Size)
			_, err := io.ReadFull(r, b)
			*keep = b
			return err
		}
		if excludedTopFiles[name] {
			// As the local backup: standby.signal and the like stay out.
			_, err := io.Copy(io.Discard, r)
			return err
		}
	}
	it := walkItem{Name: name, Info: hdr.FileInfo()}
	if hdr.Size <= smallFile {
		it.Data = make([]byte, hdr.Size)
		if _, err := io.ReadFull(r, it.Data); err != nil {
			return err
		}
		return send(it)
	}
	if hdr.Size > f.piece {
		f.p.addChunked(it)
	}
	for off := int64(0); off < hdr.Size; off += f.piece {
		buf, err := f.buffer(ctx)
		if err != nil {
			return err
		}
		c := it
		n := min(f.piece, hdr.Size-off)
		c.Data = buf[:n]
		c.Release = func() { f.pool <- buf }
		if hdr.Size > f.piece {
			c.Chunk = &chunkItem{Offset: off, Size: n}
		}
		if _, err := io.ReadFull(r, c.Data); err != nil {
			return err
		}
		if err := send(c); err != nil {
			return err
		}
	}
	return nil
}

// buffer returns a free piece buffer, waiting for a worker to release one
// once all are made.
func (f *remoteFeed) buffer(ctx context.Context) ([]byte, error) {
	select {
	case b := <-f.pool:
		return b, nil
	default:
	}
	if f.made < cap(f.pool) {
		f.made++
		return make([]byte, f.piece), nil
	}
	select {
	case b := <-f.pool:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
