package status

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Alert file names, pghoard's and pglookout's kind: an empty file in
// --alert-dir while the problem lasts.
const (
	AlertStoreUnreachable      = "store_unreachable"
	AlertArchiveMissing        = "archive_missing"
	AlertArchiveMisconfigured  = "archive_misconfigured"
	AlertServerUnreachable     = "server_unreachable"
	AlertArchiveCommandFailing = "archive_command_failing"
	AlertBackupTooOld          = "backup_too_old"
	AlertArchiveLagHigh        = "archive_lag_high"
	AlertReplicationLagWarning = "replication_lag_warning"
	AlertReplicationLagCrit    = "replication_lag_critical"
)

// AlertNames lists every alert file status may write, in the README's
// order. Files of other names in the directory are never touched.
var AlertNames = []string{
	AlertStoreUnreachable, AlertArchiveMissing, AlertArchiveMisconfigured, AlertServerUnreachable,
	AlertArchiveCommandFailing, AlertBackupTooOld, AlertArchiveLagHigh,
	AlertReplicationLagWarning, AlertReplicationLagCrit,
}

// findings is what the checks judge: the two halves of the report and
// why a half could not be measured.
type findings struct {
	archive    *ArchiveReport
	archiveErr error
	server     *ServerReport // nil: not asked
	serverErr  error
	limits     Limits
}

// judge runs every check, in the order the table shows them.
func judge(f findings) []Check {
	checks := []Check{storeCheck(f), archiveCheck(f)}
	if f.server != nil {
		checks = append(checks, serverCheck(f), archivingCheck(f), archiveCommandCheck(f))
	}
	checks = append(checks, backupAgeCheck(f))
	if f.server != nil {
		checks = append(checks, archiveLagCheck(f), replicationLagCheck(f))
	}
	return checks
}

func (f findings) archiveRead() bool { return f.archiveErr == nil }
func (f findings) serverRead() bool  { return f.server != nil && f.serverErr == nil }

func storeCheck(f findings) Check {
	c := Check{Name: "store", owns: []string{AlertStoreUnreachable}, measured: true, Message: "store reachable"}
	if f.archiveErr != nil && !errors.Is(f.archiveErr, errNotAnArchive) {
		c.State, c.Alert = Critical, AlertStoreUnreachable
		c.Message = "store unreachable: " + f.archiveErr.Error()
	}
	return c
}

func archiveCheck(f findings) Check {
	c := Check{Name: "archive", owns: []string{AlertArchiveMissing}}
	switch {
	case errors.Is(f.archiveErr, errNotAnArchive):
		c.measured = true
		c.State, c.Alert = Critical, AlertArchiveMissing
		c.Message = "no walnut.json under " + f.archive.Prefix + ": not a walnut archive (wrong prefix, or deleted)"
	case f.archiveErr != nil:
		c.notRead("archive")
	default:
		c.measured = true
		c.Message = "walnut archive of cluster " + *f.archive.SystemIdentifier
	}
	return c
}

func serverCheck(f findings) Check {
	c := Check{Name: "server", owns: []string{AlertServerUnreachable}, measured: true}
	if f.serverErr != nil {
		c.State, c.Alert = Unknown, AlertServerUnreachable
		c.Message = "server not reached: " + f.serverErr.Error()
		return c
	}
	role := "primary"
	if f.server.InRecovery {
		role = "standby"
	}
	c.Message = fmt.Sprintf("PostgreSQL %d (%s)", f.server.VersionNum, role)
	return c
}

// archivingCheck asks whether the server archives into this archive at
// all: archive_mode on, the same cluster, and its last archived file here.
func archivingCheck(f findings) Check {
	c := Check{Name: "archiving", owns: []string{AlertArchiveMisconfigured}}
	if !f.serverRead() {
		c.notRead("server")
		return c
	}
	s := f.server
	c.measured = true
	problem := func(st State, msg string) Check {
		c.State, c.Alert, c.Message = st, AlertArchiveMisconfigured, msg
		return c
	}
	switch {
	case s.ArchiveMode == "off" && !s.InRecovery:
		return problem(Critical, "archive_mode is off: nothing is archived")
	case s.ArchiveMode == "off":
		return problem(Warning, "archive_mode is off on this standby: after a promotion nothing will be archived")
	}
	if !f.archiveRead() {
		c.measured = false
		c.notRead("archive")
		return c
	}
	if id := *f.archive.SystemIdentifier; id != s.SystemIdentifier {
		return problem(Critical, fmt.Sprintf("the archive belongs to cluster %s, the server is cluster %s: check the prefix", id, s.SystemIdentifier))
	}
	if in := s.Archiver.LastArchivedInArchive; in != nil && !*in {
		return problem(Critical, fmt.Sprintf("pg_stat_archiver says %s was archived, but it is not in this archive: archive_command stores elsewhere", *s.Archiver.LastArchivedWAL))
	}
	c.Message = "archive_mode " + s.ArchiveMode
	return c
}

func archiveCommandCheck(f findings) Check {
	l := f.limits.ArchiveFailureAge
	c := Check{Name: "archive_command", owns: []string{AlertArchiveCommandFailing}, Unit: "seconds", Warning: l.warnPtr(), Critical: l.critPtr()}
	if !f.serverRead() {
		c.notRead("server")
		return c
	}
	c.measured = true
	a := f.server.Archiver
	if f.server.InRecovery && f.server.ArchiveMode != "always" {
		c.Message = "standby: its primary archives"
		return c
	}
	if !a.Failing {
		zero := 0.0
		c.Value = &zero
		c.Message = "archiving"
		if a.LastArchivedWAL != nil && a.SecondsSinceLastArchived != nil {
			c.Message = fmt.Sprintf("archiving: last archived %s %s ago", *a.LastArchivedWAL, seconds(*a.SecondsSinceLastArchived))
		} else if a.ArchivedCount == 0 {
			c.Message = "nothing archived yet"
		}
		return c
	}
	age := 0.0
	if a.FailingSeconds != nil {
		age = *a.FailingSeconds
	}
	c.Value = &age
	c.State = l.State(age)
	if c.State != OK {
		c.Alert = AlertArchiveCommandFailing
	}
	c.Message = fmt.Sprintf("archive_command failing for %s: %s failed at %s (%d failures since %s)",
		seconds(age), deref(a.LastFailedWAL), a.LastFailedTime.UTC().Format(time.RFC3339), a.FailedCount, resetText(a.StatsReset))
	return c
}

func resetText(t *time.Time) string {
	if t == nil {
		return "the statistics began"
	}
	return t.UTC().Format(time.RFC3339)
}

func backupAgeCheck(f findings) Check {
	l := f.limits.BackupAge
	c := Check{Name: "backup_age", owns: []string{AlertBackupTooOld}, Unit: "seconds", Warning: l.warnPtr(), Critical: l.critPtr()}
	if !f.archiveRead() {
		c.notRead("archive")
		return c
	}
	c.measured = true
	n := f.archive.Backups.Newest
	if n == nil {
		if l.HasWarn || l.HasCrit {
			c.State, c.Alert = Critical, AlertBackupTooOld
		}
		c.Message = "no backups in the archive"
		return c
	}
	c.Value = &n.AgeSeconds
	c.State = l.State(n.AgeSeconds)
	c.Message = fmt.Sprintf("newest backup %s finished %s ago", n.Name, seconds(n.AgeSeconds))
	if c.State != OK {
		c.Alert = AlertBackupTooOld
		c.Message += " (limit " + seconds(limitFor(l, c.State)) + ")"
	}
	return c
}

func archiveLagCheck(f findings) Check {
	l := f.limits.ArchiveLag
	c := Check{Name: "archive_lag", owns: []string{AlertArchiveLagHigh}, Unit: "segments", Warning: l.warnPtr(), Critical: l.critPtr()}
	if !f.serverRead() {
		c.notRead("server")
		return c
	}
	c.measured = true
	lag := f.server.ArchiveLag
	if lag == nil {
		c.Message = "archive lag not measured"
		switch {
		case f.server.InRecovery:
			c.Message += " on a standby"
		case f.server.Archiver.LastArchivedWAL == nil:
			c.Message += ": nothing archived yet"
		}
		return c
	}
	v := float64(lag.Segments)
	c.Value = &v
	c.State = l.State(v)
	c.Message = fmt.Sprintf("archive lag %d segments (%s)", lag.Segments, Bytes(lag.Bytes))
	if c.State != OK {
		c.Alert = AlertArchiveLagHigh
		c.Message += fmt.Sprintf(" (limit %g)", limitFor(l, c.State))
	}
	return c
}

// replicationLagCheck judges the standby furthest behind in replay, by
// pglookout's measure: its two alert files say which bound it passed.
func replicationLagCheck(f findings) Check {
	l := f.limits.ReplicationLag
	unit := "bytes"
	if f.limits.ReplicationLagSeconds {
		unit = "seconds"
	}
	c := Check{Name: "replication_lag", owns: []string{AlertReplicationLagWarning, AlertReplicationLagCrit}, Unit: unit, Warning: l.warnPtr(), Critical: l.critPtr()}
	if !f.serverRead() {
		c.notRead("server")
		return c
	}
	c.measured = true
	ss := f.server.Standbys
	if len(ss) == 0 {
		c.Message = "no standbys connected"
		return c
	}
	worst, v := -1, 0.0
	for i, s := range ss {
		lag := replayLag(s, f.limits.ReplicationLagSeconds)
		if lag == nil {
			continue
		}
		if worst < 0 || *lag > v {
			worst, v = i, *lag
		}
	}
	if worst < 0 {
		c.Message = standbys(len(ss)) + ", replay lag not reported (needs pg_monitor)"
		return c
	}
	c.Value = &v
	c.State = l.State(v)
	s := ss[worst]
	text := Bytes(int64(v))
	if f.limits.ReplicationLagSeconds {
		text = seconds(v)
	}
	c.Message = fmt.Sprintf("%s; most behind: %s (%s), replay lag %s", standbys(len(ss)), s.Name, s.State, text)
	switch c.State {
	case Warning:
		c.Alert = AlertReplicationLagWarning
	case Critical:
		c.Alert = AlertReplicationLagCrit
	}
	if c.State != OK {
		limit := Bytes(int64(limitFor(l, c.State)))
		if f.limits.ReplicationLagSeconds {
			limit = seconds(limitFor(l, c.State))
		}
		c.Message += " (limit " + limit + ")"
	}
	return c
}

func standbys(n int) string {
	if n == 1 {
		return "1 standby"
	}
	return strconv.Itoa(n) + " standbys"
}

func replayLag(s StandbyReport, inSeconds bool) *float64 {
	if inSeconds {
		if s.ReplayLagSeconds == nil {
			// PostgreSQL shows no lag for a standby that has caught up.
			if s.ReplayLagBytes != nil && *s.ReplayLagBytes == 0 {
				zero := 0.0
				return &zero
			}
			return nil
		}
		return s.ReplayLagSeconds
	}
	if s.ReplayLagBytes == nil {
		return nil
	}
	v := float64(*s.ReplayLagBytes)
	return &v
}

// notRead marks c as not judged because the archive or server it needs
// was not read; that failure is reported by its own check, so the summary
// leaves c out.
func (c *Check) notRead(what string) {
	c.State, c.Message, c.derived = Unknown, what+" not read", true
}

func limitFor(l Limit, s State) float64 {
	if s == Critical {
		return l.Crit
	}
	return l.Warn
}

// summarize is the one line that says why: the problems, worst first, or
// what is fine.
func summarize(r *Report, checks []Check, serverAsked bool) string {
	var bad []Check
	for _, c := range checks {
		if c.State != OK && !c.derived {
			bad = append(bad, c)
		}
	}
	sort.SliceStable(bad, func(i, j int) bool { return bad[i].State.rank() > bad[j].State.rank() })
	var parts []string
	for _, c := range bad {
		parts = append(parts, c.Message)
	}
	if len(bad) == 0 {
		// The headline figures, the newest backup first.
		for _, name := range []string{"backup_age", "archive_command", "archive_lag", "replication_lag"} {
			for _, c := range checks {
				if c.Name == name {
					parts = append(parts, c.Message)
				}
			}
		}
	}
	line := "WALNUT " + r.State.String() + ": " + strings.Join(parts, "; ")
	if !serverAsked {
		line += " (archive only: no server checked)"
	}
	return oneLine(line)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// seconds prints a duration in seconds to the second, as Go does ("26h0m0s").
func seconds(v float64) string {
	return (time.Duration(v * float64(time.Second))).Round(time.Second).String()
}

// Bytes prints n in binary units.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n), -1
	for (v >= unit || v <= -unit) && i < 4 {
		v /= unit
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + string("KMGTP"[i]) + "iB"
}
