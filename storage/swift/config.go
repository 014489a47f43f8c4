package swift

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/ncw/swift/v2"
	"github.com/walnut-pg/walnut/config/size"
)

// SegmentSizeVar overrides the size of the segments a large object is cut
// into, which is otherwise the cluster's max_file_size (5 GiB by default).
const SegmentSizeVar = "WALNUT_SWIFT_SEGMENT_SIZE"

// names lists, for each setting, the variables it is read from, first
// match wins. WAL-E's SWIFT_* names and OpenStack's OS_* names are two
// separate families: an operator's sourced openrc must not quietly mix
// into a WAL-E envdir, so SWIFT_AUTHURL being set picks the first family
// and only it.
type names struct {
	authURL, user, userID, password        []string
	tenant, tenantID, region, endpointType []string
	authVersion                            []string
	userDomain, userDomainID               []string
	projectDomain, projectDomainID         []string
}

var walE = names{
	authURL:         []string{"SWIFT_AUTHURL"},
	user:            []string{"SWIFT_USER"},
	userID:          []string{"SWIFT_USER_ID"},
	password:        []string{"SWIFT_PASSWORD"},
	tenant:          []string{"SWIFT_TENANT", "SWIFT_PROJECT_NAME"},
	tenantID:        []string{"SWIFT_TENANT_ID", "SWIFT_PROJECT_ID"},
	region:          []string{"SWIFT_REGION"},
	endpointType:    []string{"SWIFT_ENDPOINT_TYPE"},
	authVersion:     []string{"SWIFT_AUTH_VERSION"},
	userDomain:      []string{"SWIFT_USER_DOMAIN_NAME", "SWIFT_DOMAIN_NAME"},
	userDomainID:    []string{"SWIFT_USER_DOMAIN_ID", "SWIFT_DOMAIN_ID"},
	projectDomain:   []string{"SWIFT_PROJECT_DOMAIN_NAME"},
	projectDomainID: []string{"SWIFT_PROJECT_DOMAIN_ID"},
}

var openStack = names{
	authURL:         []string{"OS_AUTH_URL"},
	user:            []string{"OS_USERNAME"},
	userID:          []string{"OS_USER_ID"},
	password:        []string{"OS_PASSWORD"},
	tenant:          []string{"OS_PROJECT_NAME", "OS_TENANT_NAME"},
	tenantID:        []string{"OS_PROJECT_ID", "OS_TENANT_ID"},
	region:          []string{"OS_REGION_NAME"},
	endpointType:    []string{"OS_ENDPOINT_TYPE", "OS_INTERFACE"},
	authVersion:     []string{"OS_IDENTITY_API_VERSION"},
	userDomain:      []string{"OS_USER_DOMAIN_NAME"},
	userDomainID:    []string{"OS_USER_DOMAIN_ID"},
	projectDomain:   []string{"OS_PROJECT_DOMAIN_NAME"},
	projectDomainID: []string{"OS_PROJECT_DOMAIN_ID"},
}

// config is what Open needs: where, who, and how big a segment may be.
type config struct {
	container string
	prefix    string // "" or ending in "/"

	authURL, user, userID, password string
	tenant, tenantID, region        string
	endpointType                    swift.EndpointType
	authVersion                     int
	userDomain, userDomainID        string
	projectDomain, projectDomainID  string
	segmentSize                     int64 // 0: the cluster's max_file_size

	// The variables settings came from, for error messages.
	userVar, passwordVar, tenantVar, regionVar, endpointVar string
}

func parseConfig(u *url.URL, getenv func(string) string) (config, error) {
	var c config
	switch {
	case u.Opaque != "":
		return c, errors.New("swift URL needs a container: swift://container/path")
	case u.User != nil:
		return c, errors.New("swift URL cannot carry a user name or password; set SWIFT_USER and SWIFT_PASSWORD")
	case u.RawQuery != "" || u.Fragment != "":
		return c, errors.New(`swift URL cannot have a query or fragment; percent-encode "?" and "#" in the path`)
	case u.Host == "":
		return c, errors.New("swift URL needs a container: swift://container/path")
	}
	c.container = u.Host
	if p := strings.Trim(u.Path, "/"); p != "" {
		if problem := keyProblem(p); problem != "" {
			return c, fmt.Errorf("swift URL path %q %s", p, problem)
		}
		c.prefix = p + "/"
	}

	n := openStack
	if getenv("SWIFT_AUTHURL") != "" {
		n = walE
	}
	get := func(vars []string) (string, string) {
		for _, v := range vars {
			if s := getenv(v); s != "" {
				return s, v
			}
		}
		return "", vars[0]
	}
	var authVar, userVar, userIDVar string
	c.authURL, authVar = get(n.authURL)
	c.user, userVar = get(n.user)
	c.userID, userIDVar = get(n.userID)
	c.password, c.passwordVar = get(n.password)
	c.tenant, c.tenantVar = get(n.tenant)
	c.tenantID, _ = get(n.tenantID)
	c.region, c.regionVar = get(n.region)
	c.userDomain, _ = get(n.userDomain)
	c.userDomainID, _ = get(n.userDomainID)
	c.projectDomain, _ = get(n.projectDomain)
	c.projectDomainID, _ = get(n.projectDomainID)
	c.userVar = userVar
	if c.user == "" && c.userID != "" {
		c.userVar = userIDVar
	}
	switch {
	case c.authURL == "":
		return c, errors.New("swift: set SWIFT_AUTHURL (or OS_AUTH_URL) to the authentication URL")
	case c.user == "" && c.userID == "":
		return c, fmt.Errorf("swift: set %s to the user name", userVar)
	case c.password == "":
		return c, fmt.Errorf("swift: set %s to the password or key of %s", c.passwordVar, c.userVar)
	}
	if au, err := url.Parse(c.authURL); err != nil || (au.Scheme != "http" && au.Scheme != "https") || au.Host == "" {
		return c, fmt.Errorf("swift: %s is not a URL: want http(s)://host[:port]/path", authVar)
	}

	var endpoint string
	endpoint, c.endpointVar = get(n.endpointType)
	et, err := endpointType(endpoint)
	if err != nil {
		return c, fmt.Errorf("swift: %s: %w", c.endpointVar, err)
	}
	c.endpointType = et

	version, versionVar := get(n.authVersion)
	if c.authVersion, err = authVersion(version, c.authURL, n.authURL[0] == "SWIFT_AUTHURL"); err != nil {
		return c, fmt.Errorf("swift: %s: %w", versionVar, err)
	}

	if s := getenv(SegmentSizeVar); s != "" {
		n, err := size.Parse(s)
		if err != nil || n < 1 {
			return c, fmt.Errorf("swift: %s=%q: want a positive size, e.g. 1GiB or 1073741824", SegmentSizeVar, s)
		}
		c.segmentSize = n
	}
	return c, nil
}

// endpointType accepts Keystone v2's names (WAL-E's publicURL) and v3's
// interface names alike.
func endpointType(s string) (swift.EndpointType, error) {
	switch strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(s, "URL"), "Url")) {
	case "", "public":
		return swift.EndpointTypePublic, nil
	case "internal":
		return swift.EndpointTypeInternal, nil
	case "admin":
		return swift.EndpointTypeAdmin, nil
	}
	return "", fmt.Errorf("unknown endpoint type %q: want publicURL, internalURL or adminURL", s)
}

// authVersion returns the identity API version: the one set, else the one
// the URL names (/auth/v1.0, /v2.0, /v3), else WAL-E's default of 2 for
// its variables and 3, today's Keystone, for OS_AUTH_URL.
func authVersion(s, authURL string, walE bool) (int, error) {
	if s != "" {
		switch strings.TrimPrefix(strings.ToLower(s), "v") {
		case "1", "1.0":
			return 1, nil
		case "2", "2.0":
			return 2, nil
		case "3", "3.0":
			return 3, nil
		}
		return 0, fmt.Errorf("unknown identity API version %q: want 1, 2 or 3", s)
	}
	switch {
	case strings.Contains(authURL, "v3"):
		return 3, nil
	case strings.Contains(authURL, "v2"):
		return 2, nil
	case strings.Contains(authURL, "v1"):
		return 1, nil
	case walE:
		return 2, nil
	}
	return 3, nil
}
