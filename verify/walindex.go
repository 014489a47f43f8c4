package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// walObject is one object under wal/, as listed.
type walObject struct {
	archive.WALObject
	Size    int64
	ModTime time.Time
}

// walIndex is a listing of wal/ (or of one timeline's part of it) by file
// name. Listing once is what lets wal-verify check an archive of any size
// without downloading its WAL: the key carries each file's digest.
type walIndex struct {
	byName    map[string][]walObject
	malformed []string // keys under wal/ that are not walnut's
}

// listWAL lists the WAL files whose names start with name ("" for all,
// a timeline's 8 hex digits for one timeline) in both layouts wal-fetch
// reads: walnut's wal/ and, for names walnut's lacks, WAL-E's wal_005/
// (a name in both is fetched from walnut's, after comparing the two).
func listWAL(ctx context.Context, s storage.Store, name string) (*walIndex, error) {
	idx := &walIndex{byName: map[string][]walObject{}}
	err := s.List(ctx, archive.WALDir+name, func(oi storage.ObjectInfo) error {
		o, err := archive.ParseWALKey(oi.Key)
		if err != nil {
			idx.malformed = append(idx.malformed, oi.Key)
			return nil
		}
		idx.byName[o.Name] = append(idx.byName[o.Name], walObject{WALObject: o, Size: oi.Size, ModTime: oi.ModTime})
		return nil
	})
	if err != nil {
		return nil, err // stores name the operation and the prefix
	}
	err = s.List(ctx, archive.WALEWALDir+name, func(oi storage.ObjectInfo) error {
		n := archive.ParseWALEWALKey(oi.Key)
		switch {
		case n == "":
			idx.malformed = append(idx.malformed, oi.Key)
		case len(idx.byName[n]) == 0:
			o := archive.WALObject{Key: oi.Key, Name: n, Codec: compression.Lzop(), WALE: true}
			idx.byName[n] = []walObject{{WALObject: o, Size: oi.Size, ModTime: oi.ModTime}}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return idx, nil
}

// duplicate describes two or more objects under one name, which wal-fetch
// refuses to choose between, or "" for one object.
func duplicate(objs []walObject) string {
	if len(objs) < 2 {
		return ""
	}
	keys := make([]string, len(objs))
	digests := map[string]bool{}
	for i, o := range objs {
		keys[i] = o.Key
		digests[o.Digest] = true
	}
	if len(digests) > 1 {
		return fmt.Sprintf("archived %d times with different digests (%s): two different files under one name; find out which is right and delete the other", len(objs), strings.Join(keys, ", "))
	}
	return fmt.Sprintf("archived %d times with the same digest (%s): wal-fetch refuses to choose; delete all but one", len(objs), strings.Join(keys, ", "))
}

// timelineNames is how one timeline's WAL file names start: the timeline
// as 8 hex digits, as its history file's does.
func timelineNames(tli uint32) string {
	return fmt.Sprintf("%08X", tli)
}

// segmentFacts is what checkSegment learns of a segment's content.
type segmentFacts struct {
	sysid uint64
}

// checkSegment decodes a WAL segment object and checks it as wal-fetch
// would before handing it to PostgreSQL (the SHA-256 its key records),
// and that it is the whole segment its name says: its size, and the
// address and segment size in its first page header.
func checkSegment(ctx context.Context, s storage.Store, kr *crypto.Keyring, o walObject, segSize uint64) (segmentFacts, error) {
	var facts segmentFacts
	rc, err := archive.OpenDecoded(ctx, s, o.Key, kr)
	if err != nil {
		return facts, err
	}
	defer rc.Close()
	h := sha256.New()
	head := make([]byte, 64)
	n, err := io.ReadFull(rc, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return facts, fmt.Errorf("decode: %w", err)
	}
	head = head[:n]
	h.Write(head)
	rest, err := io.Copy(h, storage.ContextReader(ctx, rc))
	if err != nil {
		return facts, fmt.Errorf("decode: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil))[:archive.DigestLen]; !o.WALE && got != o.Digest {
		return facts, fmt.Errorf("content digest %s does not match the key's %s: the object is corrupt", got, o.Digest)
	}
	if size := int64(n) + rest; uint64(size) != segSize {
		return facts, fmt.Errorf("%d bytes, want a whole segment of %d", size, segSize)
	}
	sysid, hdrSegSize, err := pgcontrol.WALSegmentSystemIdentifier(head)
	if err != nil {
		return facts, err
	}
	if uint64(hdrSegSize) != segSize {
		return facts, fmt.Errorf("its page header says segments are %d bytes, the archive's are %d", hdrSegSize, segSize)
	}
	_, segNo, err := pgcontrol.ParseWALFileName(o.Name[:24], segSize)
	if err != nil {
		return facts, err
	}
	addr, err := pgcontrol.WALPageAddress(head)
	if err != nil {
		return facts, err
	}
	if want := pgcontrol.SegmentStart(segNo, segSize); addr != want {
		return facts, fmt.Errorf("its first page is at %s, but segment %s starts at %s: another segment's content", addr, o.Name[:24], want)
	}
	facts.sysid = sysid
	return facts, nil
}
