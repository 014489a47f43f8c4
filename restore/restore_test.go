package restore

import (
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/tarball"
)

func TestCheckCompleteRefusesBackupsThatCannotStart(t *testing.T) {
	file := func(p string) tarball.File { return tarball.File{Path: p, Type: tarball.TypeFile} }
	whole := []tarball.File{file("PG_VERSION"), file("backup_label"), file("global/pg_control"), file("base/1/1259")}
	if err := checkComplete(&archive.Manifest{Files: whole}); err != nil {
		t.Fatalf("complete manifest refused: %v", err)
	}
	for _, missing := range []string{"PG_VERSION", "backup_label", "global/pg_control"} {
		var files []tarball.File
		for _, f := range whole {
			if f.Path != missing {
				files = append(files, f)
			}
		}
		err := checkComplete(&archive.Manifest{Files: files})
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("manifest without %s: %v", missing, err)
		}
	}
	dir := []tarball.File{file("PG_VERSION"), file("backup_label"), {Path: "global/pg_control", Type: tarball.TypeDir}}
	if err := checkComplete(&archive.Manifest{Files: dir}); err == nil {
		t.Error("global/pg_control as a directory accepted")
	}
}
