package status

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

// healthyServer is a primary that archives into the test archive.
func healthyServer() *ServerReport {
	archived := testNow.Add(-10 * time.Second)
	return &ServerReport{
		Connected: true, VersionNum: 150008, SystemIdentifier: testSysID, ArchiveMode: "on",
		WALSegmentSize: 16 << 20, CurrentLSN: ptr("0/9000028"),
		Archiver: ArchiverReport{ArchivedCount: 9, LastArchivedWAL: ptr("000000010000000000000008"),
			LastArchivedTime: &archived, SecondsSinceLastArchived: ptr(10.0), LastArchivedInArchive: ptr(true)},
		Standbys: []StandbyReport{
			{Name: "s1", ApplicationName: "s1", State: "streaming", ReplayLagBytes: ptr(int64(0)), ReplayLagSeconds: nil},
			{Name: "s2", ApplicationName: "s2", State: "streaming", ReplayLagBytes: ptr(int64(5 << 20)), ReplayLagSeconds: ptr(42.0)},
		},
	}
}

func judged(t *testing.T, s *ServerReport, limits Limits) (State, []string, string) {
	t.Helper()
	a := &ArchiveReport{Prefix: "mem://x", Reachable: true, SystemIdentifier: ptr(testSysID),
		Backups: BackupsReport{Count: 1, Newest: &BackupReport{Name: "b", AgeSeconds: 3600}}}
	if s != nil {
		s.ArchiveLag = archiveLag(s)
	}
	checks := judge(findings{archive: a, server: s, limits: limits})
	r := &Report{State: OK}
	var alerts []string
	for _, c := range checks {
		r.State = Worst(r.State, c.State)
		if c.Alert != "" {
			alerts = append(alerts, c.Alert)
		}
	}
	return r.State, alerts, summarize(r, checks, s != nil)
}

func TestServerChecks(t *testing.T) {
	failing := func(s *ServerReport) {
		failed := testNow.Add(-5 * time.Second)
		s.Archiver.FailedCount = 3
		s.Archiver.LastFailedWAL = ptr("000000010000000000000009")
		s.Archiver.LastFailedTime = &failed
		s.Archiver.Failing = true
		s.Archiver.FailingSeconds = ptr(400.0)
	}
	cases := []struct {
		name   string
		change func(s *ServerReport)
		limits func(l *Limits)
		state  State
		alerts []string
		says   string
	}{
		{"healthy", nil, nil, OK, nil, "WALNUT OK: newest backup b finished 1h0m0s ago; archiving: last archived 000000010000000000000008 10s ago"},
		{"failing, warn at once", failing, func(l *Limits) { l.ArchiveFailureAge = Limit{Warn: 0, Crit: 600, HasWarn: true, HasCrit: true} },
			Warning, []string{AlertArchiveCommandFailing}, "WALNUT WARNING: archive_command failing for 6m40s: 000000010000000000000009 failed"},
		{"failing too long", failing, nil, Critical, []string{AlertArchiveCommandFailing}, "WALNUT CRITICAL: archive_command failing for 6m40s"},
		{"failing, limit off", failing, func(l *Limits) { l.ArchiveFailureAge = Off }, OK, nil, "archive_command failing"},
		{"archive lag", func(s *ServerReport) { s.CurrentLSN = ptr("0/E000028") }, func(l *Limits) { l.ArchiveLag = Limit{Warn: 2, Crit: 8, HasWarn: true, HasCrit: true} },
			Warning, []string{AlertArchiveLagHigh}, "archive lag 5 segments (80.0 MiB) (limit 2)"},
		{"replication lag warning", nil, func(l *Limits) { l.ReplicationLag = Limit{Warn: 1 << 20, Crit: 64 << 20, HasWarn: true, HasCrit: true} },
			Warning, []string{AlertReplicationLagWarning}, "most behind: s2 (streaming), replay lag 5.0 MiB (limit 1.0 MiB)"},
		{"replication lag critical", nil, func(l *Limits) { l.ReplicationLag = Limit{Crit: 1 << 20, HasCrit: true} },
			Critical, []string{AlertReplicationLagCrit}, "replay lag 5.0 MiB"},
		{"replication lag in seconds", nil, func(l *Limits) {
			l.ReplicationLag, l.ReplicationLagSeconds = Limit{Warn: 10, Crit: 60, HasWarn: true, HasCrit: true}, true
		}, Warning, []string{AlertReplicationLagWarning}, "replay lag 42s (limit 10s)"},
		{"archive_mode off", func(s *ServerReport) { s.ArchiveMode = "off" }, nil, Critical, []string{AlertArchiveMisconfigured}, "archive_mode is off"},
		{"another cluster", func(s *ServerReport) { s.SystemIdentifier = "1" }, nil, Critical, []string{AlertArchiveMisconfigured}, "the archive belongs to cluster " + testSysID},
		{"archived elsewhere", func(s *ServerReport) { s.Archiver.LastArchivedInArchive = ptr(false) }, nil, Critical, []string{AlertArchiveMisconfigured}, "archive_command stores elsewhere"},
		{"standby", func(s *ServerReport) {
			s.InRecovery, s.CurrentLSN = true, ptr("0/F000000")
			failing(s) // a standby with archive_mode on does not archive
		}, nil, OK, nil, "WALNUT OK"},
		{"server down", func(s *ServerReport) { *s = ServerReport{Error: ptr("connect: refused")} }, nil, Unknown, []string{AlertServerUnreachable}, "WALNUT UNKNOWN: server not reached"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := healthyServer()
			if c.change != nil {
				c.change(s)
			}
			l := defaultLimits()
			if c.limits != nil {
				c.limits(&l)
			}
			var state State
			var alerts []string
			var summary string
			if s.Error != nil {
				a := &ArchiveReport{Prefix: "mem://x", SystemIdentifier: ptr(testSysID), Backups: BackupsReport{Newest: &BackupReport{Name: "b", AgeSeconds: 1}}}
				checks := judge(findings{archive: a, server: s, serverErr: errors.New(*s.Error), limits: l})
				r := &Report{}
				for _, ch := range checks {
					r.State = Worst(r.State, ch.State)
					if ch.Alert != "" {
						alerts = append(alerts, ch.Alert)
					}
				}
				state, summary = r.State, summarize(r, checks, true)
			} else {
				state, alerts, summary = judged(t, s, l)
			}
			if state != c.state || !slices.Equal(alerts, c.alerts) || !strings.Contains(summary, c.says) {
				t.Errorf("state %s, alerts %v, summary %q; want %s, %v, containing %q", state, alerts, summary, c.state, c.alerts, c.says)
			}
			if strings.Contains(summary, "not read") {
				t.Errorf("summary repeats what follows from another check: %q", summary)
			}
		})
	}
}

func TestArchiveLag(t *testing.T) {
	for _, c := range []struct {
		last, current string
		segSize       int64
		inRecovery    bool
		want          *ArchiveLag
	}{
		// Insert position in the segment after the last archived one.
		{"000000010000000000000008", "0/9000028", 16 << 20, false, &ArchiveLag{0, 0x28}},
		// Right at the start of the next segment, after a switch.
		{"000000010000000000000008", "0/9000000", 16 << 20, false, &ArchiveLag{0, 0}},
		{"000000010000000000000008", "0/C800000", 16 << 20, false, &ArchiveLag{3, 3<<24 + 0x800000}},
		{"0000000100000000000000FF", "1/1000000", 16 << 20, false, &ArchiveLag{1, 1 << 24}},
		{"000000010000000000000008.00000028.backup", "0/9000100", 16 << 20, false, &ArchiveLag{0, 0x100}},
		// A timeline switch: positions count, not timelines.
		{"000000010000000000000008", "0/A000000", 16 << 20, false, &ArchiveLag{1, 1 << 24}},
		{"000000010000000000000002", "0/3000000", 1 << 20, false, &ArchiveLag{45, 45 << 20}},
		{"00000002.history", "0/9000028", 16 << 20, false, nil},
		{"000000010000000000000008", "0/9000028", 16 << 20, true, nil},
	} {
		s := &ServerReport{InRecovery: c.inRecovery, WALSegmentSize: c.segSize, CurrentLSN: ptr(c.current),
			Archiver: ArchiverReport{LastArchivedWAL: ptr(c.last)}}
		got := archiveLag(s)
		if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("archiveLag(%s at %s) = %+v, want %+v", c.last, c.current, got, c.want)
		}
	}
}

func TestNameStandbys(t *testing.T) {
	ss := []StandbyReport{{ApplicationName: "a", PID: 1}, {ApplicationName: "walreceiver", PID: 7}, {ApplicationName: "walreceiver", PID: 9}, {PID: 3}}
	nameStandbys(ss)
	var got []string
	for _, s := range ss {
		got = append(got, s.Name)
	}
	if want := []string{"a", "walreceiver-7", "walreceiver-9", "unnamed"}; !slices.Equal(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
