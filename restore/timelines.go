package restore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/pgcontrol"
	"github.com/walnut-pg/walnut/storage"
)

// maxTimelineProbe bounds the search for newer timelines.
const maxTimelineProbe = 1000

// timelineAdvice says whether recovery from the backup sn can follow the
// newest timeline in the archive, as PostgreSQL does by default
// (recovery_target_timeline 'latest'). A restored server that promoted
// and archived into the source's archive leaves a timeline that branched
// off at its recovery target; a backup that ended after that point cannot
// follow it, and the server stops with "requested timeline N is not a
// child of this server's history". It returns a warning naming the
// timelines at fault and the --recovery-target-timeline that works, or ""
// when there is nothing to say.
func timelineAdvice(ctx context.Context, s storage.Store, kr *crypto.Keyring, sn *archive.Sentinel) (string, error) {
	end, err := pgcontrol.ParseLSN(sn.FinishLSN)
	if err != nil {
		return "", fmt.Errorf("%s: finish LSN: %w", archive.SentinelKey(sn.Name), err)
	}
	// PostgreSQL finds the newest timeline the same way: the history files
	// after the backup's, one by one, until one is missing.
	var newer []uint32
	for tli := sn.Timeline + 1; tli <= sn.Timeline+maxTimelineProbe; tli++ {
		_, err := archive.FindWALAny(ctx, s, pgcontrol.HistoryFileName(tli))
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if err != nil {
			return "", err
		}
		newer = append(newer, tli)
	}
	if len(newer) == 0 {
		return "", nil
	}
	var bad []string
	good := "current"
	for _, tli := range newer {
		entries, err := readHistory(ctx, s, kr, pgcontrol.HistoryFileName(tli))
		if errors.Is(err, archive.ErrNoPrivateKey) {
			return fmt.Sprintf("the archive holds timelines after this backup's (%d to %d) whose history files are encrypted, and no private key is configured: walnut cannot check that recovery can follow the newest; if the server stops with \"requested timeline is not a child of this server's history\", restore again with --recovery-target-timeline current",
				newer[0], newer[len(newer)-1]), nil
		}
		if err != nil {
			return "", err
		}
		if why := branchedBefore(entries, sn.Timeline, end); why != "" {
			bad = append(bad, fmt.Sprintf("%s (%s)", pgcontrol.HistoryFileName(tli), why))
			continue
		}
		good = strconv.FormatUint(uint64(tli), 10)
	}
	if len(bad) == 0 || good == strconv.FormatUint(uint64(newer[len(newer)-1]), 10) {
		return "", nil
	}
	return fmt.Sprintf("the archive holds timelines this backup cannot reach: %s; recovery following the newest timeline (PostgreSQL's default, 'latest') will stop with \"requested timeline %d is not a child of this server's history\": add --recovery-target-timeline %s",
		strings.Join(bad, ", "), newer[len(newer)-1], good), nil
}

// branchedBefore says why a timeline with this history cannot be reached
// from timeline tli at end, or "" when it can.
func branchedBefore(entries []pgcontrol.HistoryEntry, tli uint32, end pgcontrol.LSN) string {
	for _, e := range entries {
		if e.ParentTLI != tli {
			continue
		}
		if e.SwitchPoint < end {
			return fmt.Sprintf("branched from timeline %d at %s, before this backup's end at %s", tli, e.SwitchPoint, end)
		}
		return ""
	}
	return fmt.Sprintf("does not descend from timeline %d", tli)
}

func readHistory(ctx context.Context, s storage.Store, kr *crypto.Keyring, name string) ([]pgcontrol.HistoryEntry, error) {
	obj, err := archive.FindWALAny(ctx, s, name)
	if err != nil {
		return nil, err
	}
	rc, err := archive.OpenDecoded(ctx, s, obj.Key, kr)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", obj.Key, err)
	}
	defer rc.Close()
	entries, err := pgcontrol.ParseHistory(rc)
	if err == nil {
		err = archive.ReadToEnd(rc)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", obj.Key, err)
	}
	return entries, nil
}
