package clidoc

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// VersionLine is walnut's answer to version and --version: the version
// and commit (BuildVersion, from the linker's values ldVersion and
// ldCommit or the build info), then Go's version and the platform.
func VersionLine(ldVersion, ldCommit string) string {
	bi, _ := debug.ReadBuildInfo()
	v, c := BuildVersion(ldVersion, ldCommit, bi)
	return fmt.Sprintf("walnut %s (commit %s, %s %s/%s)", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// BuildVersion decides what walnut calls its version and commit. The
// linker's values win: the Makefile sets them from git. Without them,
// `go install github.com/walnut-pg/walnut@vX` records vX as the main
// module's version, and a `go build` in a clone with VCS stamping on
// records the revision; a pseudo-version (go install @commit) carries the
// revision too.
func BuildVersion(ldVersion, ldCommit string, bi *debug.BuildInfo) (v, c string) {
	v, c = ldVersion, ldCommit
	if bi == nil {
		bi = &debug.BuildInfo{}
	}
	if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if c == "" {
		var rev string
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		switch {
		case rev != "":
			c = shortRevision(rev)
			if modified {
				c += "-dirty"
			}
		default:
			c = pseudoVersionRevision(bi.Main.Version)
		}
	}
	if v == "" {
		v = "dev"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
}

func shortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// pseudoVersionRevision returns the commit a Go pseudo-version such as
// v0.0.0-20261207213000-d02837a1b2c3 names, or "" for any other version:
// its last dash-separated part is the first 12 hex digits of the commit.
func pseudoVersionRevision(v string) string {
	v, _, _ = strings.Cut(v, "+")
	i := strings.LastIndexByte(v, '-')
	if i < 0 {
		return ""
	}
	rev := v[i+1:]
	if len(rev) != 12 || strings.Trim(rev, "0123456789abcdef") != "" {
		return ""
	}
	// The part before it must be a 14-digit timestamp: that is what
	// tells a pseudo-version from a tag like v1.2.0-rc.abcdefabcdef.
	ts := v[:i]
	if j := strings.LastIndexAny(ts, "-."); j >= 0 {
		ts = ts[j+1:]
	}
	if len(ts) != 14 || strings.Trim(ts, "0123456789") != "" {
		return ""
	}
	return rev
}
