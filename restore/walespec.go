package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/storage"
)

// WALESpec is WAL-E's --restore-spec file: for each tablespace OID
// listed under "tablespaces", where its files go ("loc") and the link
// PostgreSQL follows ("link", pg_tblspc/<oid> in the data directory).
type WALESpec struct {
	tablespaces []string
	loc         map[string]string // OID -> location
	basePrefix  string
}

// ReadWALESpec reads a --restore-spec file.
func ReadWALESpec(path string) (*WALESpec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--restore-spec: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("--restore-spec %s: not JSON: %w", path, err)
	}
	spec := &WALESpec{loc: map[string]string{}}
	if v, ok := raw["base_prefix"]; ok {
		if err := json.Unmarshal(v, &spec.basePrefix); err != nil {
			return nil, fmt.Errorf("--restore-spec %s: base_prefix: %w", path, err)
		}
	}
	if err := json.Unmarshal(raw["tablespaces"], &spec.tablespaces); err != nil || len(spec.tablespaces) == 0 {
		return nil, fmt.Errorf("--restore-spec %s: want a \"tablespaces\" list of OIDs", path)
	}
	for _, oid := range spec.tablespaces {
		var ts struct{ Loc, Link string }
		if err := json.Unmarshal(raw[oid], &ts); err != nil || ts.Loc == "" {
			return nil, fmt.Errorf("--restore-spec %s: tablespace %s: want {\"loc\": DIR, \"link\": \"pg_tblspc/%s\"}", path, oid, oid)
		}
		// WAL-E made the link where "link" said, relative to the data
		// directory; PostgreSQL only follows pg_tblspc/<oid>.
		if filepath.Clean(ts.Link) != "pg_tblspc/"+oid {
			return nil, fmt.Errorf("--restore-spec %s: tablespace %s: link %q, want pg_tblspc/%s", path, oid, ts.Link, oid)
		}
		if !filepath.IsAbs(ts.Loc) {
			return nil, fmt.Errorf("--restore-spec %s: tablespace %s: loc %q is not an absolute path", path, oid, ts.Loc)
		}
		spec.loc[oid] = filepath.Clean(ts.Loc)
	}
	return spec, nil
}

// Mapping turns the spec into walnut's tablespace mapping (recorded
// location -> new location) for the backup name resolves to, and returns
// that backup's name, so the restore takes the same one even if a newer
// backup finishes meanwhile. Tablespaces the spec leaves out go where the
// backup recorded them, as WAL-E merged the spec into the backup's own.
func (spec *WALESpec) Mapping(ctx context.Context, s storage.Store, kr *crypto.Keyring, name, dest string, tsMap map[string]string) (string, error) {
	if spec.basePrefix != "" && filepath.Clean(spec.basePrefix) != filepath.Clean(dest) {
		return "", fmt.Errorf("--restore-spec: base_prefix %s is not DEST %s: give it as DEST", spec.basePrefix, dest)
	}
	sn, err := archive.ResolveBackup(ctx, s, name)
	if err != nil {
		return "", err
	}
	m, err := archive.ReadManifest(ctx, s, sn.ManifestKey, kr)
	if err != nil {
		return "", err
	}
	recorded := map[string]string{}
	var oids []string
	for _, ts := range m.Tablespaces {
		recorded[ts.OID] = ts.Location
		oids = append(oids, ts.OID)
	}
	sort.Strings(oids)
	for _, oid := range spec.tablespaces {
		old, ok := recorded[oid]
		if !ok {
			return "", fmt.Errorf("--restore-spec: backup %s has no tablespace %s (it has %v)", sn.Name, oid, oids)
		}
		if prev, ok := tsMap[old]; ok && prev != spec.loc[oid] {
			return "", fmt.Errorf("--restore-spec and --tablespace-mapping both place %s: give one", old)
		}
		tsMap[old] = spec.loc[oid]
	}
	return sn.Name, nil
}
