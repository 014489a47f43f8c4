package s3

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/walnut-pg/walnut/config/size"
)

// Settings this backend reads through getenv, besides the credential
// chain's own (see credentials.go).
const (
	envRegion          = "AWS_REGION"
	envDefaultRegion   = "AWS_DEFAULT_REGION"
	envEndpointS3      = "AWS_ENDPOINT_URL_S3"
	envEndpoint        = "AWS_ENDPOINT_URL"
	envWALEEndpoint    = "WALE_S3_ENDPOINT"
	envPathStyle       = "WALNUT_S3_FORCE_PATH_STYLE"
	envPathStyleWALG   = "AWS_S3_FORCE_PATH_STYLE"
	envSSE             = "WALNUT_S3_SSE"
	envSSEKMSID        = "WALNUT_S3_SSE_KMS_ID"
	envStorageClass    = "WALNUT_S3_STORAGE_CLASS"
	envCAFile          = "WALNUT_S3_CA_CERT_FILE"
	envCABundle        = "AWS_CA_BUNDLE"
	envPartSize        = "WALNUT_S3_PART_SIZE"
	envStallTimeout    = "WALNUT_S3_STALL_TIMEOUT"
	defaultAWSEndpoint = "s3.amazonaws.com"
)

// S3's own limits on multipart uploads.
const (
	minPartSize     = 5 << 20
	maxPartSize     = 5 << 30
	maxParts        = 10000
	defaultPartSize = 16 << 20
)

// defaultStallTimeout is how long a connection may carry no bytes at all,
// either way, while a request is in flight: the read timeout the AWS CLI
// uses. A slow link keeps moving bytes; a dead one does not.
const defaultStallTimeout = 60 * time.Second

// config is everything Open needs, parsed and checked up front so that a
// mistake is reported once, naming the variable, before any request.
type config struct {
	bucket string
	prefix string // "" or ending in "/"

	endpoint     string // host[:port]
	secure       bool
	lookup       minio.BucketLookupType
	endpointFrom string // the variable that set endpoint, or ""

	region       string
	sse          encrypt.ServerSide
	sseName      string
	storageClass string
	caFile       string
	caFrom       string
	partSize     int64
	stallTimeout time.Duration
}

func parseConfig(u *url.URL, getenv func(string) string) (config, error) {
	var c config
	if err := c.parsePrefix(u); err != nil {
		return c, err
	}
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }

	c.endpoint, c.secure, c.lookup = defaultAWSEndpoint, true, minio.BucketLookupAuto
	for _, name := range []string{envEndpointS3, envEndpoint, envWALEEndpoint} {
		v := get(name)
		if v == "" {
			continue
		}
		ep, err := parseEndpoint(name, v)
		if err != nil {
			return c, err
		}
		c.endpoint, c.secure, c.lookup, c.endpointFrom = ep.host, ep.secure, ep.lookup, name
		break
	}
	for _, name := range []string{envPathStyle, envPathStyleWALG} {
		v := get(name)
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("%s=%q: want true or false", name, v)
		}
		if b {
			c.lookup = minio.BucketLookupPath
		} else if c.lookup == minio.BucketLookupPath {
			c.lookup = minio.BucketLookupAuto
		}
		break
	}

	c.region = get(envRegion)
	if c.region == "" {
		c.region = get(envDefaultRegion)
	}

	switch sse := get(envSSE); strings.ToLower(sse) {
	case "":
		if get(envSSEKMSID) != "" {
			return c, fmt.Errorf("%s is set but %s is not: set %s=aws:kms", envSSEKMSID, envSSE, envSSE)
		}
	case "aes256":
		c.sse, c.sseName = encrypt.NewSSE(), "AES256"
	case "aws:kms":
		// An empty key ID means the bucket's default KMS key.
		s, err := encrypt.NewSSEKMS(get(envSSEKMSID), nil)
		if err != nil {
			return c, fmt.Errorf("%s: %w", envSSEKMSID, err)
		}
		c.sse, c.sseName = s, "aws:kms"
	default:
		return c, fmt.Errorf("%s=%q: want AES256 or aws:kms", envSSE, sse)
	}

	c.storageClass = strings.ToUpper(get(envStorageClass))

	c.caFile, c.caFrom = get(envCAFile), envCAFile
	if c.caFile == "" {
		c.caFile, c.caFrom = get(envCABundle), envCABundle
	}

	c.partSize = defaultPartSize
	if v := get(envPartSize); v != "" {
		n, err := size.Parse(v)
		if err != nil || n < minPartSize || n > maxPartSize {
			return c, fmt.Errorf("%s=%q: want a size from %s to %s, e.g. 16MiB", envPartSize, v, size.Format(minPartSize), size.Format(maxPartSize))
		}
		c.partSize = n
	}

	c.stallTimeout = defaultStallTimeout
	if v := get(envStallTimeout); v != "" {
		d, err := parseDuration(v)
		if err != nil || d < time.Second {
			return c, fmt.Errorf("%s=%q: want a duration of at least 1s, such as 60s or 2m", envStallTimeout, v)
		}
		c.stallTimeout = d
	}
	return c, nil
}

// parseDuration takes a Go duration or a plain number of seconds.
func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}

// parsePrefix takes the bucket from the host and the key prefix from the
// path of s3://bucket/path.
func (c *config) parsePrefix(u *url.URL) error {
	switch {
	case u.Opaque != "":
		return fmt.Errorf("s3 prefix needs a bucket: s3://bucket/path, not s3:%s", u.Opaque)
	case u.User != nil:
		return errors.New("s3 prefix cannot carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead")
	case u.Host == "":
		return errors.New("s3 prefix has no bucket: want s3://bucket/path")
	case u.Port() != "" || strings.Contains(u.Host, ":"):
		return fmt.Errorf("s3 prefix names bucket %q with a port; set the server in AWS_ENDPOINT_URL instead", u.Host)
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("s3 prefix cannot have a query or fragment")
	}
	c.bucket = u.Host
	p := strings.Trim(u.Path, "/")
	if strings.Contains(p, "//") {
		return fmt.Errorf("s3 prefix path %q has an empty segment", u.Path)
	}
	if p != "" {
		c.prefix = p + "/"
	}
	return nil
}

// endpoint is an S3 server address parsed from one of the endpoint
// variables.
type endpoint struct {
	host   string
	secure bool
	lookup minio.BucketLookupType
}

// parseEndpoint reads AWS_ENDPOINT_URL's http(s)://host[:port] and WAL-E's
// WALE_S3_ENDPOINT, whose scheme also names the calling format:
// https+path://host:port, http+path://..., https+virtualhost://... (and
// boto's https+subdomain, the same thing). Each variable takes either
// form, since both appear in the wild under both names.
func parseEndpoint(name, v string) (endpoint, error) {
	u, err := url.Parse(v)
	if err != nil {
		// The value may hold a password by mistake: do not repeat it.
		return endpoint{}, fmt.Errorf("%s is not a URL: want https://host[:port] (or WAL-E's https+path://host:port)", name)
	}
	if u.User != nil {
		return endpoint{}, fmt.Errorf("%s cannot carry a user name or password; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", name)
	}
	var ep endpoint
	proto, format, _ := strings.Cut(strings.ToLower(u.Scheme), "+")
	switch proto {
	case "https":
		ep.secure = true
	case "http":
	default:
		return endpoint{}, fmt.Errorf("%s=%q: want http://host[:port] or https://host[:port] (or WAL-E's https+path://host:port)", name, v)
	}
	switch format {
	case "":
		ep.lookup = minio.BucketLookupAuto
	case "path":
		ep.lookup = minio.BucketLookupPath
	case "virtualhost", "subdomain":
		ep.lookup = minio.BucketLookupDNS
	default:
		return endpoint{}, fmt.Errorf("%s=%q: unknown calling format %q; want %s+path or %s+virtualhost", name, v, format, proto, proto)
	}
	switch {
	case u.Host == "" || u.Hostname() == "":
		return endpoint{}, fmt.Errorf("%s=%q has no host", name, v)
	case u.Path != "" && u.Path != "/":
		return endpoint{}, fmt.Errorf("%s=%q: an endpoint cannot have a path; put the bucket and path in WALNUT_PREFIX", name, v)
	case u.RawQuery != "" || u.Fragment != "":
		return endpoint{}, fmt.Errorf("%s=%q cannot have a query or fragment", name, v)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return endpoint{}, fmt.Errorf("%s=%q: bad port %q", name, v, p)
		}
	}
	ep.host = u.Host
	// minio-go signs with the Host header, which omits a default port.
	if (ep.secure && u.Port() == "443") || (!ep.secure && u.Port() == "80") {
		ep.host = u.Hostname()
		if strings.Contains(ep.host, ":") {
			ep.host = "[" + ep.host + "]"
		}
	}
	return ep, nil
}
