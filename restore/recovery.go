package restore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/walnut-pg/walnut/archive"
)

// RecoveryOptions are the settings backup-fetch writes so the restored
// server starts archive recovery by itself.
type RecoveryOptions struct {
	RestoreCommand string
	TargetTime     string
	TargetLSN      string
	TargetXID      string
	TargetName     string
	// The targets given on the command line, also when given empty.
	TargetTimeGiven, TargetLSNGiven, TargetXIDGiven, TargetNameGiven bool
	TargetAction                                                     string // pause, promote, shutdown; "" leaves PostgreSQL's default
	TargetTimeline                                                   string
	Inclusive                                                        *bool
	Standby                                                          bool // standby.signal instead of recovery.signal
}

// Validate refuses what PostgreSQL would refuse, or silently ignore, at
// startup, when the operator is no longer looking. A target given empty
// counts as given: a shell variable that expanded to nothing must not turn
// a point-in-time recovery into a recovery to the end.
func (r RecoveryOptions) Validate() error {
	n := 0
	for _, t := range []struct {
		flag, value string
		given       bool
		check       func(string) error
	}{
		{"--recovery-target-time", r.TargetTime, r.TargetTimeGiven, checkTargetTime},
		{"--recovery-target-lsn", r.TargetLSN, r.TargetLSNGiven, checkTargetLSN},
		{"--recovery-target-xid", r.TargetXID, r.TargetXIDGiven, checkTargetXID},
		{"--recovery-target-name", r.TargetName, r.TargetNameGiven, checkTargetName},
	} {
		if !t.given && t.value == "" {
			continue
		}
		n++
		if strings.TrimSpace(t.value) == "" {
			return fmt.Errorf("%s is empty: give a target, or leave the option out to recover to the end of the archive", t.flag)
		}
		if err := t.check(t.value); err != nil {
			return err
		}
	}
	if n > 1 {
		return errors.New("give at most one of --recovery-target-time, --recovery-target-lsn, --recovery-target-xid, --recovery-target-name")
	}
	switch r.TargetAction {
	case "", "pause", "promote", "shutdown":
	default:
		return fmt.Errorf("--recovery-target-action %q: want pause, promote or shutdown", r.TargetAction)
	}
	if r.TargetAction != "" && n == 0 {
		return fmt.Errorf("--recovery-target-action %s without a recovery target: PostgreSQL would replay to the end of the archive and then %s; give a target, or leave the action out", r.TargetAction, r.TargetAction)
	}
	if err := checkTargetTimeline(r.TargetTimeline); err != nil {
		return err
	}
	if r.RestoreCommand == "" {
		return errors.New("no restore_command")
	}
	return nil
}

// settings returns the postgresql.conf lines, in a stable order.
func (r RecoveryOptions) settings() [][2]string {
	s := [][2]string{{"restore_command", r.RestoreCommand}}
	add := func(k, v string) {
		if v != "" {
			s = append(s, [2]string{k, v})
		}
	}
	add("recovery_target_time", r.TargetTime)
	add("recovery_target_lsn", r.TargetLSN)
	add("recovery_target_xid", r.TargetXID)
	add("recovery_target_name", r.TargetName)
	add("recovery_target_action", r.TargetAction)
	add("recovery_target_timeline", r.TargetTimeline)
	if r.Inclusive != nil {
		add("recovery_target_inclusive", fmt.Sprint(*r.Inclusive))
	}
	return s
}

// writeRecovery appends the recovery settings to postgresql.auto.conf,
// where later lines win over the restored ones, and creates the signal
// file.
func writeRecovery(root *os.Root, sn *archive.Sentinel, r RecoveryOptions) error {
	if err := appendSettings(root, sn, r.settings()); err != nil {
		return err
	}
	signal := "recovery.signal"
	if r.Standby {
		signal = "standby.signal"
	}
	return root.WriteFile(signal, nil, 0o600)
}

// appendSettings appends settings to postgresql.auto.conf, durably.
func appendSettings(root *os.Root, sn *archive.Sentinel, settings [][2]string) error {
	f, err := root.OpenFile("postgresql.auto.conf", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n# Added by walnut backup-fetch of %s at %s\n", sn.Name, time.Now().UTC().Format(time.RFC3339))
	for _, kv := range settings {
		fmt.Fprintf(&b, "%s = '%s'\n", kv[0], strings.ReplaceAll(kv[1], "'", "''"))
	}
	if _, err := io.WriteString(f, b.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
