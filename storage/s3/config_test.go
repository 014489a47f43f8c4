package s3

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		value   string
		host    string
		secure  bool
		lookup  minio.BucketLookupType
		wantErr string
	}{
		{value: "https+path://s3.eu-central-1.amazonaws.com:443", host: "s3.eu-central-1.amazonaws.com", secure: true, lookup: minio.BucketLookupPath},
		{value: "http+path://127.0.0.1:9000", host: "127.0.0.1:9000", lookup: minio.BucketLookupPath},
		{value: "https+virtualhost://storage.example.com", host: "storage.example.com", secure: true, lookup: minio.BucketLookupDNS},
		{value: "https+subdomain://s3.amazonaws.com", host: "s3.amazonaws.com", secure: true, lookup: minio.BucketLookupDNS},
		{value: "HTTPS+PATH://rgw.example.com:8443/", host: "rgw.example.com:8443", secure: true, lookup: minio.BucketLookupPath},
		{value: "http+path://[::1]:80", host: "[::1]", lookup: minio.BucketLookupPath},
		{value: "https://minio.example.com:9000", host: "minio.example.com:9000", secure: true, lookup: minio.BucketLookupAuto},
		{value: "http://localhost:9000", host: "localhost:9000", lookup: minio.BucketLookupAuto},
		{value: "http://localhost:80", host: "localhost", lookup: minio.BucketLookupAuto},
		{value: "localhost:9000", wantErr: "want http://host[:port] or https://host[:port]"},
		{value: "minio.example.com", wantErr: "want http://host[:port]"},
		{value: "ftp+path://host", wantErr: "want http://host[:port]"},
		{value: "https+dns://host", wantErr: `unknown calling format "dns"; want https+path or https+virtualhost`},
		{value: "https+path://host/bucket", wantErr: "an endpoint cannot have a path"},
		{value: "https+path://host?x=1", wantErr: "cannot have a query"},
		{value: "https+path://", wantErr: "has no host"},
		{value: "https://host:99999", wantErr: `bad port "99999"`},
		{value: "https+path://key:hunter2@host", wantErr: "cannot carry a user name or password"},
		{value: "https://key:hunter2@host:%zz", wantErr: "is not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			ep, err := parseEndpoint("WALE_S3_ENDPOINT", tt.value)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("parsed as %+v, want error containing %q", ep, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "WALE_S3_ENDPOINT") {
					t.Errorf("err = %q, want it to name WALE_S3_ENDPOINT and contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("err = %q repeats the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ep.host != tt.host || ep.secure != tt.secure || ep.lookup != tt.lookup {
				t.Errorf("got host %q secure %v lookup %v, want %q %v %v", ep.host, ep.secure, ep.lookup, tt.host, tt.secure, tt.lookup)
			}
		})
	}
}

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string
		env     func(string) string
		check   func(t *testing.T, c config)
		wantErr string
	}{
		{name: "defaults", prefix: "s3://bucket/some/path/", env: envOf(), check: func(t *testing.T, c config) {
			if c.bucket != "bucket" || c.prefix != "some/path/" || c.endpoint != "s3.amazonaws.com" || !c.secure ||
				c.lookup != minio.BucketLookupAuto || c.partSize != 16<<20 || c.stallTimeout != time.Minute || c.sse != nil {
				t.Errorf("%+v", c)
			}
		}},
		{name: "bucket only", prefix: "s3://bucket", env: envOf(), check: func(t *testing.T, c config) {
			if c.prefix != "" {
				t.Errorf("prefix %q, want none", c.prefix)
			}
		}},
		{name: "AWS_ENDPOINT_URL wins over WALE_S3_ENDPOINT", prefix: "s3://b/p",
			env: envOf("AWS_ENDPOINT_URL", "http://127.0.0.1:9000", "WALE_S3_ENDPOINT", "https+path://other:443"),
			check: func(t *testing.T, c config) {
				if c.endpoint != "127.0.0.1:9000" || c.secure || c.endpointFrom != "AWS_ENDPOINT_URL" {
					t.Errorf("%+v", c)
				}
			}},
		{name: "AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL", prefix: "s3://b/p",
			env: envOf("AWS_ENDPOINT_URL_S3", "https://s3.example.com", "AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
			check: func(t *testing.T, c config) {
				if c.endpoint != "s3.example.com" || !c.secure {
					t.Errorf("%+v", c)
				}
			}},
		{name: "WAL-E endpoint and region", prefix: "s3://b/p",
			env: envOf("WALE_S3_ENDPOINT", "https+path://storage.yandexcloud.net", "AWS_DEFAULT_REGION", "ru-central1"),
			check: func(t *testing.T, c config) {
				if c.endpoint != "storage.yandexcloud.net" || c.lookup != minio.BucketLookupPath || c.region != "ru-central1" {
					t.Errorf("%+v", c)
				}
			}},
		{name: "AWS_REGION wins", prefix: "s3://b/p", env: envOf("AWS_REGION", "eu-west-1", "AWS_DEFAULT_REGION", "us-east-2"),
			check: func(t *testing.T, c config) {
				if c.region != "eu-west-1" {
					t.Errorf("region %q", c.region)
				}
			}},
		{name: "path style", prefix: "s3://b/p", env: envOf("AWS_S3_FORCE_PATH_STYLE", "True"),
			check: func(t *testing.T, c config) {
				if c.lookup != minio.BucketLookupPath {
					t.Errorf("lookup %v", c.lookup)
				}
			}},
		{name: "SSE-S3 and storage class", prefix: "s3://b/p", env: envOf("WALNUT_S3_SSE", "AES256", "WALNUT_S3_STORAGE_CLASS", "standard_ia"),
			check: func(t *testing.T, c config) {
				if c.sseName != "AES256" || c.storageClass != "STANDARD_IA" {
					t.Errorf("%+v", c)
				}
			}},
		{name: "SSE-KMS", prefix: "s3://b/p", env: envOf("WALNUT_S3_SSE", "aws:kms", "WALNUT_S3_SSE_KMS_ID", "arn:aws:kms:eu-west-1:1:key/x"),
			check: func(t *testing.T, c config) {
				if c.sseName != "aws:kms" {
					t.Errorf("%+v", c)
				}
			}},
		{name: "part size and stall", prefix: "s3://b/p", env: envOf("WALNUT_S3_PART_SIZE", "5242880", "WALNUT_S3_STALL_TIMEOUT", "90"),
			check: func(t *testing.T, c config) {
				if c.partSize != 5<<20 || c.stallTimeout != 90*time.Second {
					t.Errorf("%+v", c)
				}
			}},
		{name: "part size with a unit", prefix: "s3://b/p", env: envOf("WALNUT_S3_PART_SIZE", "32MiB"),
			check: func(t *testing.T, c config) {
				if c.partSize != 32<<20 {
					t.Errorf("%+v", c)
				}
			}},
		{name: "stall as duration", prefix: "s3://b/p", env: envOf("WALNUT_S3_STALL_TIMEOUT", "2m"),
			check: func(t *testing.T, c config) {
				if c.stallTimeout != 2*time.Minute {
					t.Errorf("%v", c.stallTimeout)
				}
			}},
		{name: "no bucket", prefix: "s3:///path", env: envOf(), wantErr: "s3 prefix has no bucket"},
		{name: "credentials in URL", prefix: "s3://AKIA:hunter2@bucket/path", env: envOf(), wantErr: "cannot carry credentials"},
		{name: "port", prefix: "s3://bucket:9000/path", env: envOf(), wantErr: "set the server in AWS_ENDPOINT_URL"},
		{name: "query", prefix: "s3://bucket/path?x=1", env: envOf(), wantErr: "query or fragment"},
		{name: "empty segment", prefix: "s3://bucket/a//b", env: envOf(), wantErr: "empty segment"},
		{name: "bad path style", prefix: "s3://b/p", env: envOf("WALNUT_S3_FORCE_PATH_STYLE", "yes please"), wantErr: `WALNUT_S3_FORCE_PATH_STYLE="yes please": want true or false`},
		{name: "bad SSE", prefix: "s3://b/p", env: envOf("WALNUT_S3_SSE", "rot13"), wantErr: `WALNUT_S3_SSE="rot13": want AES256 or aws:kms`},
		{name: "KMS ID without SSE", prefix: "s3://b/p", env: envOf("WALNUT_S3_SSE_KMS_ID", "k"), wantErr: "set WALNUT_S3_SSE=aws:kms"},
		{name: "small part", prefix: "s3://b/p", env: envOf("WALNUT_S3_PART_SIZE", "1048576"), wantErr: `WALNUT_S3_PART_SIZE="1048576": want a size from 5MiB to 5GiB`},
		{name: "small part in SI units", prefix: "s3://b/p", env: envOf("WALNUT_S3_PART_SIZE", "5MB"), wantErr: "want a size from 5MiB to 5GiB"},
		{name: "bad part unit", prefix: "s3://b/p", env: envOf("WALNUT_S3_PART_SIZE", "16XB"), wantErr: "WALNUT_S3_PART_SIZE"},
		{name: "bad stall", prefix: "s3://b/p", env: envOf("WALNUT_S3_STALL_TIMEOUT", "10ms"), wantErr: "WALNUT_S3_STALL_TIMEOUT"},
		{name: "bad endpoint", prefix: "s3://b/p", env: envOf("AWS_ENDPOINT_URL", "minio:9000"), wantErr: "AWS_ENDPOINT_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			c, err := parseConfig(u, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("err = %q repeats the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestHalfAKeyPair(t *testing.T) {
	for _, env := range []func(string) string{
		envOf("AWS_ACCESS_KEY_ID", "AKIA"),
		envOf("AWS_SECRET_ACCESS_KEY", "hunter2"),
	} {
		_, err := newCreds(env)
		if err == nil || !strings.Contains(err.Error(), "is set but") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("newCreds = %v, want an error naming the missing half", err)
		}
	}
}
