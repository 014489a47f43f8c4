package archive

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/walnut-pg/walnut/pgcontrol"
)

// maxSmallFile bounds timeline and backup history files, which are a few
// lines each.
const maxSmallFile = 1 << 20

// segmentFacts are what a segment's first page says about it.
type segmentFacts struct {
	sysid   uint64
	segSize uint32
}

// checkFile refuses a file that is not what its name says, before it can
// take that name in the archive: once stored, a wrong file would block the
// right one for good (a different file under a stored name is a conflict)
// and wal-fetch would hand it to recovery. Segments and .partial files
// must be whole, with a valid first page for that very segment; history
// and backup history files must parse.
func checkFile(path, name string, size int64, head []byte) (*segmentFacts, error) {
	switch {
	case pgcontrol.IsWALFileName(name) || pgcontrol.IsPartialFileName(name):
		return checkSegment(name, size, head)
	case pgcontrol.IsHistoryFileName(name):
		b, err := readSmall(path, size)
		if err != nil {
			return nil, err
		}
		return nil, checkHistory(name, b)
	case pgcontrol.IsBackupHistoryFileName(name):
		b, err := readSmall(path, size)
		if err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(b, []byte("START WAL LOCATION: ")) {
			return nil, fmt.Errorf("not a backup history file: it does not begin with START WAL LOCATION")
		}
		return nil, nil
	}
	return nil, fmt.Errorf("not a WAL segment, .history, .backup or .partial file name")
}

func checkSegment(name string, size int64, head []byte) (*segmentFacts, error) {
	sysid, segSize, err := pgcontrol.WALSegmentSystemIdentifier(head)
	if err != nil {
		return nil, err
	}
	if size != int64(segSize) {
		return nil, fmt.Errorf("%d bytes, but its first page says segments are %d bytes: truncated or not a WAL segment", size, segSize)
	}
	_, segNo, err := pgcontrol.ParseWALFileName(name[:24], uint64(segSize))
	if err != nil {
		return nil, err
	}
	addr, err := pgcontrol.WALPageAddress(head)
	if err != nil {
		return nil, err
	}
	if want := pgcontrol.SegmentStart(segNo, uint64(segSize)); addr != want {
		return nil, fmt.Errorf("its first page is at %s, segment %s starts at %s: the file is another segment", addr, name[:24], want)
	}
	return &segmentFacts{sysid: sysid, segSize: segSize}, nil
}

func checkHistory(name string, b []byte) error {
	entries, err := pgcontrol.ParseHistory(bytes.NewReader(b))
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return fmt.Errorf("a timeline history file without entries")
	}
	var tli uint32
	if _, err := fmt.Sscanf(strings.TrimSuffix(name, ".history"), "%08X", &tli); err != nil {
		return err
	}
	if last := entries[len(entries)-1].ParentTLI; last >= tli {
		return fmt.Errorf("lists timeline %d as a parent of timeline %d", last, tli)
	}
	return nil
}

func readSmall(path string, size int64) ([]byte, error) {
	if size > maxSmallFile {
		return nil, fmt.Errorf("%d bytes: too large for a history file", size)
	}
	return os.ReadFile(path)
}

// CheckFetchedWAL checks a file fetched under name by the rules a file
// must meet to be stored under it, given its size and its first bytes
// (all of a history file): for an object whose key carries no digest.
func CheckFetchedWAL(name string, size int64, head []byte) error {
	switch {
	case pgcontrol.IsWALFileName(name) || pgcontrol.IsPartialFileName(name):
		_, err := checkSegment(name, size, head)
		return err
	case pgcontrol.IsHistoryFileName(name):
		if size > int64(len(head)) {
			return fmt.Errorf("%d bytes: too large for a history file", size)
		}
		return checkHistory(name, head)
	case pgcontrol.IsBackupHistoryFileName(name):
		if !bytes.HasPrefix(head, []byte("START WAL LOCATION: ")) {
			return fmt.Errorf("not a backup history file: it does not begin with START WAL LOCATION")
		}
	}
	return nil
}
