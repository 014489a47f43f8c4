package swift

import (
	"net/url"
	"strings"
	"testing"

	"github.com/ncw/swift/v2"
	"github.com/walnut-pg/walnut/storage"
)

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

var walEEnv = []string{"SWIFT_AUTHURL=https://keystone.example:5000/v2.0", "SWIFT_USER=alice", "SWIFT_PASSWORD=s3cret-pw", "SWIFT_TENANT=backups"}

func TestParseURL(t *testing.T) {
	tests := []struct {
		url, container, prefix, wantErr string
	}{
		{"swift://pg", "pg", "", ""},
		{"swift://pg/", "pg", "", ""},
		{"swift://pg/db1", "pg", "db1/", ""},
		{"swift://pg/db1/main/", "pg", "db1/main/", ""},
		{"swift://Mixed_Case-1/x%20y", "Mixed_Case-1", "x y/", ""},
		{"swift://", "", "", "needs a container"},
		{"swift:pg/x", "", "", "needs a container"},
		{"swift://alice:s3cret-pw@pg/x", "", "", "cannot carry a user name"},
		{"swift://pg/x?temp_url_sig=s3cret-pw", "", "", "query or fragment"},
		{"swift://pg/a//b", "", "", "empty segment"},
		{"swift://pg/a/../b", "", "", `".." segment`},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseConfig(u, envOf(walEEnv...))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.url, err, tt.wantErr)
			} else if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%s: error leaks the secret: %v", tt.url, err)
			}
			continue
		}
		if err != nil || c.container != tt.container || c.prefix != tt.prefix {
			t.Errorf("%s: container %q prefix %q err %v; want %q %q", tt.url, c.container, c.prefix, err, tt.container, tt.prefix)
		}
	}
}

func TestParseSettings(t *testing.T) {
	u, _ := url.Parse("swift://pg/x")
	tests := []struct {
		name    string
		env     []string
		check   func(config) bool
		wantErr string
	}{
		{"WAL-E names", walEEnv, func(c config) bool {
			return c.authURL == "https://keystone.example:5000/v2.0" && c.user == "alice" && c.password == "s3cret-pw" &&
				c.tenant == "backups" && c.authVersion == 2 && c.endpointType == swift.EndpointTypePublic
		}, ""},
		{"OpenStack names", []string{"OS_AUTH_URL=https://keystone.example:5000", "OS_USERNAME=bob", "OS_PASSWORD=pw",
			"OS_PROJECT_NAME=proj", "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=ops", "OS_REGION_NAME=RegionTwo",
			"OS_INTERFACE=internal", "OS_IDENTITY_API_VERSION=3"}, func(c config) bool {
			return c.user == "bob" && c.tenant == "proj" && c.userDomain == "Default" && c.projectDomain == "ops" &&
				c.region == "RegionTwo" && c.endpointType == swift.EndpointTypeInternal && c.authVersion == 3
		}, ""},
		{"OS_TENANT_NAME and OS_ENDPOINT_TYPE", []string{"OS_AUTH_URL=https://k/v2.0", "OS_USERNAME=bob", "OS_PASSWORD=pw",
			"OS_TENANT_NAME=old", "OS_ENDPOINT_TYPE=adminURL"}, func(c config) bool {
			return c.tenant == "old" && c.endpointType == swift.EndpointTypeAdmin && c.authVersion == 2
		}, ""},
		// A sourced openrc must not leak into a WAL-E configuration.
		{"families do not mix", append([]string{"OS_PROJECT_NAME=other", "OS_REGION_NAME=elsewhere"}, walEEnv...), func(c config) bool {
			return c.tenant == "backups" && c.region == ""
		}, ""},
		{"internalURL", append([]string{"SWIFT_ENDPOINT_TYPE=internalURL"}, walEEnv...), func(c config) bool {
			return c.endpointType == swift.EndpointTypeInternal
		}, ""},
		{"tempauth URL means v1", []string{"SWIFT_AUTHURL=http://127.0.0.1:8080/auth/v1.0", "SWIFT_USER=test:tester", "SWIFT_PASSWORD=testing"}, func(c config) bool {
			return c.authVersion == 1
		}, ""},
		{"WAL-E default version is 2", []string{"SWIFT_AUTHURL=https://identity.example/", "SWIFT_USER=a", "SWIFT_PASSWORD=b"}, func(c config) bool {
			return c.authVersion == 2
		}, ""},
		{"OS default version is 3", []string{"OS_AUTH_URL=https://identity.example/", "OS_USERNAME=a", "OS_PASSWORD=b"}, func(c config) bool {
			return c.authVersion == 3
		}, ""},
		{"explicit version wins", append([]string{"SWIFT_AUTH_VERSION=3"}, walEEnv...), func(c config) bool {
			return c.authVersion == 3
		}, ""},
		{"user id", []string{"OS_AUTH_URL=https://k/v3", "OS_USER_ID=abc123", "OS_PASSWORD=pw"}, func(c config) bool {
			return c.userID == "abc123" && c.userVar == "OS_USER_ID"
		}, ""},
		{"segment size", append([]string{"WALNUT_SWIFT_SEGMENT_SIZE=1048576"}, walEEnv...), func(c config) bool {
			return c.segmentSize == 1<<20
		}, ""},
		{"segment size with a unit", append([]string{"WALNUT_SWIFT_SEGMENT_SIZE=1G"}, walEEnv...), func(c config) bool {
			return c.segmentSize == 1e9
		}, ""},
		{"nothing set", nil, nil, "set SWIFT_AUTHURL (or OS_AUTH_URL)"},
		{"no user", []string{"SWIFT_AUTHURL=https://k/v2.0", "SWIFT_PASSWORD=pw"}, nil, "set SWIFT_USER"},
		{"no password", []string{"OS_AUTH_URL=https://k/v3", "OS_USERNAME=bob"}, nil, "set OS_PASSWORD"},
		{"bad URL", []string{"SWIFT_AUTHURL=keystone:5000", "SWIFT_USER=a", "SWIFT_PASSWORD=b"}, nil, "SWIFT_AUTHURL is not a URL"},
		{"bad endpoint type", append([]string{"SWIFT_ENDPOINT_TYPE=private"}, walEEnv...), nil, `SWIFT_ENDPOINT_TYPE: unknown endpoint type "private"`},
		{"bad version", append([]string{"SWIFT_AUTH_VERSION=4"}, walEEnv...), nil, `SWIFT_AUTH_VERSION: unknown identity API version "4"`},
		{"bad segment size", append([]string{"WALNUT_SWIFT_SEGMENT_SIZE=1GX"}, walEEnv...), nil, `WALNUT_SWIFT_SEGMENT_SIZE="1GX": want a positive size`},
		{"zero segment size", append([]string{"WALNUT_SWIFT_SEGMENT_SIZE=0"}, walEEnv...), nil, `WALNUT_SWIFT_SEGMENT_SIZE="0": want a positive size`},
	}
	for _, tt := range tests {
		c, err := parseConfig(u, envOf(tt.env...))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
		} else if !tt.check(c) {
			t.Errorf("%s: unexpected config %+v", tt.name, c)
		}
	}
}

func TestOpenErrorsArePermanent(t *testing.T) {
	u, _ := url.Parse("swift://pg/x")
	_, err := Open(t.Context(), u, envOf())
	if err == nil || !storage.IsPermanent(err) {
		t.Errorf("Open without settings = %v, want a permanent error", err)
	}
}

func TestInvalidKeys(t *testing.T) {
	for _, key := range []string{"", "/abs", "a//b", "a/", "./a", "a/../b", "a\x00b", "\xff", ".walnut-segments/x"} {
		err := checkKey(key)
		if err == nil || !storage.IsPermanent(err) {
			t.Errorf("checkKey(%q) = %v, want a permanent error", key, err)
		}
	}
	for _, key := range []string{"k", "wal/000000010000000000000001-abc.zst", "a.walnut-segments/x", "x/.walnut-segments/y", "odd/a?b#c"} {
		if err := checkKey(key); err != nil {
			t.Errorf("checkKey(%q) = %v", key, err)
		}
	}
}
