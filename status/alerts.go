package status

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// syncAlerts makes dir hold an empty file for each active alert and none
// for an alert that has cleared, as pghoard and pglookout do, so checks
// written for them (test -e DIR/NAME) keep working. A check that could not
// be judged leaves its files as they are: an unreachable server neither
// raises nor clears the archiver's alert. Only status's own names are
// touched; other tools may share the directory. A file that already
// exists is left alone, so its time says since when the problem lasts.
func syncAlerts(dir string, checks []Check) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, c := range checks {
		if !c.measured {
			continue
		}
		for _, name := range c.owns {
			p := filepath.Join(dir, name)
			if name == c.Alert {
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
				if err == nil {
					err = f.Close()
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("raise %s: %w", name, err))
				}
				continue
			}
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("clear %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}
