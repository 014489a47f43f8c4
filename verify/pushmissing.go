package verify

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/walnut-pg/walnut/pgcontrol"
)

// PushCandidates returns the files of the cluster at pgdata that wal-push
// should store to fill what rep found missing, as paths in its pg_wal:
// the history files and gap segments the report names, and segments the
// archive lacks entirely from the oldest backup's start on. A segment
// counts only once PostgreSQL has finished it (archive_status holds its
// .ready or .done): a recycled segment or the one being written has the
// right name but not that content. notes say which missing files the
// cluster no longer has.
func PushCandidates(pgdata string, rep *WALReport) (paths, notes []string, err error) {
	walDir := filepath.Join(pgdata, "pg_wal")
	entries, err := os.ReadDir(walDir)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", walDir, err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		if e.Type().IsRegular() {
			have[e.Name()] = true
		}
	}
	finished := func(name string) bool {
		for _, ext := range []string{".ready", ".done"} {
			if _, err := os.Stat(filepath.Join(walDir, "archive_status", name+ext)); err == nil {
				return true
			} else if !errors.Is(err, fs.ErrNotExist) {
				return false
			}
		}
		return false
	}
	want := map[string]bool{}
	for _, name := range rep.Missing {
		switch {
		case !have[name]:
			notes = append(notes, fmt.Sprintf("%s is missing from the archive and no longer in %s", name, walDir))
		case pgcontrol.IsHistoryFileName(name) || finished(name):
			want[name] = true
		default:
			notes = append(notes, fmt.Sprintf("%s is in %s but PostgreSQL has not marked it finished (no archive_status file): not pushed", name, walDir))
		}
	}
	var from uint64
	fromOK := false
	if rep.First != "" {
		if _, seg, err := pgcontrol.ParseWALFileName(rep.First, rep.SegmentSize); err == nil {
			from, fromOK = seg, true
		}
	}
	for name := range have {
		if rep.archived[name] || want[name] {
			continue
		}
		switch {
		case pgcontrol.IsHistoryFileName(name):
			want[name] = true
		case pgcontrol.IsWALFileName(name) && fromOK && finished(name):
			if _, seg, err := pgcontrol.ParseWALFileName(name, rep.SegmentSize); err == nil && seg >= from {
				want[name] = true
			}
		}
	}
	for name := range want {
		paths = append(paths, filepath.Join(walDir, name))
	}
	sort.Strings(paths)
	return paths, notes, nil
}
