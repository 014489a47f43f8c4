package cliargs

import (
	"io"
	"os"
	"os/exec"
	"syscall"
)

// StartDetached starts exe with args and environ in a session of its own
// and does not wait for it: PostgreSQL, which waits for restore_command
// and signals its process group, neither waits for nor kills it. Its
// stderr is stderr when that is a file (warnings then reach PostgreSQL's
// log like the caller's own; anything else would need the caller to stay
// and copy).
func StartDetached(exe string, args, environ []string, stderr io.Writer) error {
	cmd := exec.Command(exe, args...)
	cmd.Env = environ
	if f, ok := stderr.(*os.File); ok {
		cmd.Stderr = f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}
