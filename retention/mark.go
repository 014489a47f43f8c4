package retention

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/storage"
)

// MarkOptions is what backup-mark needs.
type MarkOptions struct {
	Store     storage.Store
	Name      string // a backup name or LATEST
	Permanent bool   // false: --impermanent
}

// Mark makes a backup permanent, so that no delete but delete everything
// removes it or the WAL from its start to its stop segment, or makes it
// ordinary again. It rewrites the sentinel in one Put, which is all or
// nothing, keeping every field it does not know (a newer walnut's). It
// returns the backup's name and whether anything changed.
func Mark(ctx context.Context, o MarkOptions) (name string, changed bool, err error) {
	if err := archive.Require(ctx, o.Store); err != nil {
		return "", false, err
	}
	sn, err := archive.ResolveBackup(ctx, o.Store, o.Name)
	if err != nil {
		return "", false, err
	}
	if sn.IsWALE() {
		return sn.Name, false, fmt.Errorf("%s is WAL-E's backup, whose sentinel has no permanence: keep it with delete before %s or a larger retain, or take a walnut backup and mark that", sn.Name, sn.Name)
	}
	if sn.Format > archive.FormatVersion {
		return sn.Name, false, fmt.Errorf("%s: format %d is newer than this walnut understands (%d); upgrade walnut", archive.SentinelKey(sn.Name), sn.Format, archive.FormatVersion)
	}
	if sn.Permanent == o.Permanent {
		return sn.Name, false, nil
	}
	key := archive.SentinelKey(sn.Name)
	rc, err := o.Store.Get(ctx, key)
	if err != nil {
		return sn.Name, false, fmt.Errorf("read %s: %w", key, err)
	}
	raw, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	rc.Close()
	if err != nil {
		return sn.Name, false, fmt.Errorf("read %s: %w", key, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return sn.Name, false, fmt.Errorf("read %s: %w", key, err)
	}
	fields["permanent"] = json.RawMessage(fmt.Sprint(o.Permanent))
	out, err := json.MarshalIndent(fields, "", "  ")
	if err != nil {
		return sn.Name, false, err
	}
	out = append(out, '\n')
	if err := o.Store.Put(ctx, key, bytes.NewReader(out), int64(len(out))); err != nil {
		return sn.Name, false, fmt.Errorf("store %s: %w", key, err)
	}
	return sn.Name, true, nil
}
