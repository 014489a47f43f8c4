package clidoc

import (
	"runtime/debug"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	const rev = "d02837a1b2c3d4e5f60718293a4b5c6d7e8f9012"
	tests := []struct {
		name                 string
		ldVersion, ldCommit  string
		bi                   *debug.BuildInfo
		wantVersion, wantCmt string
	}{
		{"no build info", "", "", nil, "dev", "unknown"},
		{"go run, no vcs", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev", "unknown"},
		{"go install @tag", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0", "unknown"},
		{"go install @commit", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207213000-d02837a1b2c3"}}, "v0.0.0-20261207213000-d02837a1b2c3", "d02837a1b2c3"},
		{"go install after a tag", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.1-0.20261207213000-d02837a1b2c3"}}, "v1.4.1-0.20261207213000-d02837a1b2c3", "d02837a1b2c3"},
		{"prerelease tag is no pseudo-version", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0-rc.abcdefabcdef"}}, "v1.4.0-rc.abcdefabcdef", "unknown"},
		{"clone build with vcs stamping", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207213000-d02837a1b2c3+dirty"}, Settings: settings("vcs", "git", "vcs.revision", rev, "vcs.modified", "true")}, "v0.0.0-20261207213000-d02837a1b2c3+dirty", "d02837a1b2c3-dirty"},
		{"clean clone build", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: settings("vcs.revision", rev, "vcs.modified", "false")}, "dev", "d02837a1b2c3"},
		{"Makefile ldflags win", "v0.0.0-412-gd02837a1b2c3", "d02837a1b2c3", &debug.BuildInfo{Main: debug.Module{Version: "v9.9.9"}, Settings: settings("vcs.revision", "ffffffffffffffff")}, "v0.0.0-412-gd02837a1b2c3", "d02837a1b2c3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, c := BuildVersion(tt.ldVersion, tt.ldCommit, tt.bi)
			if v != tt.wantVersion || c != tt.wantCmt {
				t.Errorf("BuildVersion = %q, %q; want %q, %q", v, c, tt.wantVersion, tt.wantCmt)
			}
		})
	}
}
