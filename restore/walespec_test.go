package restore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// WAL-E's restore spec: what its README shows is read; a link elsewhere
// than pg_tblspc/OID, a relative location or a tablespace without an
// entry is refused with the OID named.
func TestReadRestoreSpec(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		spec    string
		want    map[string]string
		problem string
	}{
		{`{"12345": {"loc": "/data/postgres/tablespaces/tblspc001/", "link": "pg_tblspc/12345"}, "tablespaces": ["12345"]}`, map[string]string{"12345": "/data/postgres/tablespaces/tblspc001"}, ""},
		{`{"1": {"loc": "/a", "link": "pg_tblspc/1"}, "2": {"loc": "/b", "link": "pg_tblspc/2"}, "tablespaces": ["1", "2"], "base_prefix": "/pg"}`, map[string]string{"1": "/a", "2": "/b"}, ""},
		{`{"1": {"loc": "/a", "link": "1"}, "tablespaces": ["1"]}`, nil, "link"},
		{`{"1": {"loc": "a", "link": "pg_tblspc/1"}, "tablespaces": ["1"]}`, nil, "absolute"},
		{`{"tablespaces": ["1"]}`, nil, "tablespace 1"},
		{`{"1": {"loc": "/a", "link": "pg_tblspc/1"}}`, nil, "tablespaces"},
		{`{"1": `, nil, "not JSON"},
	} {
		path := filepath.Join(dir, "spec.json")
		if err := os.WriteFile(path, []byte(c.spec), 0o600); err != nil {
			t.Fatal(err)
		}
		spec, err := ReadWALESpec(path)
		switch {
		case c.problem != "":
			if err == nil || !strings.Contains(err.Error(), c.problem) {
				t.Errorf("%s: %v, want an error about %s", c.spec, err, c.problem)
			}
		case err != nil:
			t.Errorf("%s: %v", c.spec, err)
		case len(spec.loc) != len(c.want):
			t.Errorf("%s: %v, want %v", c.spec, spec.loc, c.want)
		default:
			for k, v := range c.want {
				if spec.loc[k] != v {
					t.Errorf("%s: %v, want %v", c.spec, spec.loc, c.want)
				}
			}
		}
	}
}

// argparse's attached values ("-p8") are split for one-letter flags that
// take a value, globals and the command's, and nothing else moves.
