package gcs_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/storage/gcs"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		prefix string
		env    map[string]string
		want   gcs.Config // Bucket, Prefix, Endpoint, CredentialsFile
	}{
		{"gs://bkt", nil, gcs.Config{Bucket: "bkt"}},
		{"gs://bkt/pg/main/", map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": "/etc/wal.d/sa.json"},
			gcs.Config{Bucket: "bkt", Prefix: "pg/main/", CredentialsFile: "/etc/wal.d/sa.json"}},
		{"gs://bkt/p", map[string]string{"STORAGE_EMULATOR_HOST": "127.0.0.1:4443"}, gcs.Config{Bucket: "bkt", Prefix: "p/", Endpoint: "http://127.0.0.1:4443"}},
		{"gs://bkt/p", map[string]string{"STORAGE_EMULATOR_HOST": "https://gcs.local:8443/storage/v1/"}, gcs.Config{Bucket: "bkt", Prefix: "p/", Endpoint: "https://gcs.local:8443"}},
	}
	for _, tt := range tests {
		u, _ := url.Parse(tt.prefix)
		got, err := gcs.ConfigFromEnv(u, func(k string) string { return tt.env[k] })
		if err != nil {
			t.Errorf("%s %v: %v", tt.prefix, tt.env, err)
			continue
		}
		if got.Bucket != tt.want.Bucket || got.Prefix != tt.want.Prefix || got.Endpoint != tt.want.Endpoint || got.CredentialsFile != tt.want.CredentialsFile {
			t.Errorf("%s %v:\ngot  %+v\nwant %+v", tt.prefix, tt.env, got, tt.want)
		}
		if got.ChunkSize != gcs.DefaultChunkSize || got.ChunkSize%(256<<10) != 0 || got.MaxAttempts != gcs.DefaultMaxAttempts {
			t.Errorf("defaults not set: %+v", got)
		}
	}

	for _, tt := range []struct {
		prefix  string
		env     map[string]string
		wantErr string
	}{
		{"gs:///p", nil, "gs prefix needs a bucket: gs://bucket/path"},
		{"gs://u:secret@bkt/p", nil, "cannot carry credentials"},
		{"gs://bkt/p?x=1", nil, "cannot have a query"},
		{"gs://bkt/p", map[string]string{"STORAGE_EMULATOR_HOST": "ftp://x"}, "STORAGE_EMULATOR_HOST: want host:port or an http:// URL"},
		{"gs://bkt/p", map[string]string{"STORAGE_EMULATOR_HOST": "http://x:1/?key=secret"}, "without a query"},
	} {
		u, _ := url.Parse(tt.prefix)
		_, err := gcs.ConfigFromEnv(u, func(k string) string { return tt.env[k] })
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s %v: error %v, want one containing %q", tt.prefix, tt.env, err, tt.wantErr)
		}
	}
}
