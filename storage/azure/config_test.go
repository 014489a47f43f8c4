package azure_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/storage/azure"
)

const (
	key    = "a2V5LWZvci10ZXN0cw==" // base64, as account keys are
	badKey = "HUNTER2-not-base64!"
	sasSig = "HUNTER2sig"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		env    map[string]string
		want   azure.Config // only the fields compared below
	}{
		{
			name:   "account and key",
			prefix: "azure://pgarch/prod/main/",
			env:    map[string]string{"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_KEY": key},
			want:   azure.Config{Container: "pgarch", Prefix: "prod/main/", Endpoint: "https://acct.blob.core.windows.net", Account: "acct", Key: key, CredentialVar: "AZURE_STORAGE_KEY"},
		},
		{
			name:   "WAL-E names with a SAS token",
			prefix: "wabs://pgarch",
			env:    map[string]string{"WABS_ACCOUNT_NAME": "acct", "WABS_SAS_TOKEN": "?sv=1&sig=" + sasSig},
			want:   azure.Config{Container: "pgarch", Endpoint: "https://acct.blob.core.windows.net", Account: "acct", SAS: "sv=1&sig=" + sasSig, CredentialVar: "WABS_SAS_TOKEN"},
		},
		{
			name:   "WAL-E key",
			prefix: "wabs://pgarch/x",
			env:    map[string]string{"WABS_ACCOUNT_NAME": "acct", "WABS_ACCESS_KEY": key},
			want:   azure.Config{Container: "pgarch", Prefix: "x/", Endpoint: "https://acct.blob.core.windows.net", Account: "acct", Key: key, CredentialVar: "WABS_ACCESS_KEY"},
		},
		{
			name:   "WAL-G key name",
			prefix: "azure://pgarch",
			env:    map[string]string{"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_ACCESS_KEY": key},
			want:   azure.Config{Container: "pgarch", Endpoint: "https://acct.blob.core.windows.net", Account: "acct", Key: key, CredentialVar: "AZURE_STORAGE_ACCESS_KEY"},
		},
		{
			name:   "key wins over SAS, AZURE_ over WABS_",
			prefix: "azure://pgarch",
			env: map[string]string{"AZURE_STORAGE_ACCOUNT": "acct", "WABS_ACCOUNT_NAME": "other",
				"AZURE_STORAGE_SAS_TOKEN": "sig=x", "WABS_ACCESS_KEY": key},
			want: azure.Config{Container: "pgarch", Endpoint: "https://acct.blob.core.windows.net", Account: "acct", Key: key, CredentialVar: "WABS_ACCESS_KEY"},
		},
		{
			name:   "endpoint override for Azurite",
			prefix: "azure://pgarch",
			env: map[string]string{"AZURE_STORAGE_ACCOUNT": "devstoreaccount1", "AZURE_STORAGE_KEY": key,
				"AZURE_STORAGE_ENDPOINT": "http://127.0.0.1:10000/devstoreaccount1/"},
			want: azure.Config{Container: "pgarch", Endpoint: "http://127.0.0.1:10000/devstoreaccount1", Account: "devstoreaccount1", Key: key, CredentialVar: "AZURE_STORAGE_KEY"},
		},
		{
			name:   "WALNUT_AZURE_ENDPOINT wins; SAS needs no account",
			prefix: "azure://pgarch",
			env: map[string]string{"AZURE_STORAGE_SAS_TOKEN": "sig=x",
				"AZURE_STORAGE_ENDPOINT": "https://wrong.example", "WALNUT_AZURE_ENDPOINT": "https://acct.blob.core.usgovcloudapi.net"},
			want: azure.Config{Container: "pgarch", Endpoint: "https://acct.blob.core.usgovcloudapi.net", Account: "acct", SAS: "sig=x", CredentialVar: "AZURE_STORAGE_SAS_TOKEN"},
		},
		{
			name:   "connection string with an endpoint suffix",
			prefix: "azure://pgarch",
			env: map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + key + ";EndpointSuffix=core.chinacloudapi.cn",
				"AZURE_STORAGE_ACCOUNT": "ignored", "AZURE_STORAGE_KEY": "ignored"},
			want: azure.Config{Container: "pgarch", Endpoint: "https://acct.blob.core.chinacloudapi.cn", Account: "acct", Key: key, CredentialVar: "AZURE_STORAGE_CONNECTION_STRING"},
		},
		{
			name:   "connection string with a blob endpoint and a SAS",
			prefix: "azure://pgarch",
			env:    map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=1&sig=" + sasSig},
			want:   azure.Config{Container: "pgarch", Endpoint: "https://acct.blob.core.windows.net", Account: "acct", SAS: "sv=1&sig=" + sasSig, CredentialVar: "AZURE_STORAGE_CONNECTION_STRING"},
		},
		{
			name:   "connection string for the development storage",
			prefix: "azure://pgarch",
			env:    map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"},
			want:   azure.Config{Container: "pgarch", Endpoint: "http://127.0.0.1:10000/devstoreaccount1", Account: "devstoreaccount1", Key: "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==", CredentialVar: "AZURE_STORAGE_CONNECTION_STRING"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			got, err := azure.ConfigFromEnv(u, func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if got.Container != tt.want.Container || got.Prefix != tt.want.Prefix || got.Endpoint != tt.want.Endpoint ||
				got.Account != tt.want.Account || got.Key != tt.want.Key || got.SAS != tt.want.SAS || got.CredentialVar != tt.want.CredentialVar {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if got.BlockSize != azure.DefaultBlockSize || got.Concurrency != azure.DefaultConcurrency || got.IOTimeout != azure.DefaultIOTimeout {
				t.Errorf("defaults not set: %+v", got)
			}
		})
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	tests := []struct {
		prefix  string
		env     map[string]string
		wantErr string
	}{
		{"azure://pgarch", nil, "azure credentials missing: set AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN"},
		{"azure:///p", map[string]string{"AZURE_STORAGE_ACCOUNT": "a", "AZURE_STORAGE_KEY": key}, "azure prefix needs a container: azure://container/path"},
		{"azure://PG/p", map[string]string{"AZURE_STORAGE_ACCOUNT": "a", "AZURE_STORAGE_KEY": key}, `azure container name "PG" is not 3 to 63 lower-case letters`},
		{"azure://a--b/p", map[string]string{"AZURE_STORAGE_ACCOUNT": "a", "AZURE_STORAGE_KEY": key}, `azure container name "a--b"`},
		{"azure://pgarch/p?sig=" + sasSig, nil, "cannot have a query; put a SAS token in AZURE_STORAGE_SAS_TOKEN"},
		{"azure://acct:" + badKey + "@pg/p", nil, "cannot carry credentials"},
		{"azure://pgarch", map[string]string{"AZURE_STORAGE_KEY": key}, "AZURE_STORAGE_KEY needs the account name in AZURE_STORAGE_ACCOUNT"},
		{"azure://pgarch", map[string]string{"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_KEY": badKey}, "AZURE_STORAGE_KEY is not a base64 storage account key"},
		{"azure://pgarch", map[string]string{"AZURE_STORAGE_SAS_TOKEN": "sig=x"}, "azure storage account unknown: set AZURE_STORAGE_ACCOUNT, or the blob service URL in AZURE_STORAGE_ENDPOINT"},
		{"azure://pgarch", map[string]string{"AZURE_STORAGE_ACCOUNT": "My_Account", "AZURE_STORAGE_KEY": key}, `"My_Account" is not 3 to 24 lower-case letters and digits`},
		{"azure://pgarch", map[string]string{"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_KEY": key, "AZURE_STORAGE_ENDPOINT": "acct.blob.core.windows.net"}, "AZURE_STORAGE_ENDPOINT: not an http:// or https:// URL"},
		{"azure://pgarch", map[string]string{"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_ENDPOINT": "https://acct.blob.core.windows.net/?sig=" + sasSig, "AZURE_STORAGE_KEY": key}, "cannot carry a query or credentials"},
		{"azure://pgarch", map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "AccountName=acct;" + badKey}, "AZURE_STORAGE_CONNECTION_STRING has a part without \"=\""},
		{"azure://pgarch", map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "AccountName=acct"}, "has neither AccountKey nor SharedAccessSignature"},
		{"azure://pgarch", map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "AccountKey=" + key}, "has neither AccountName nor BlobEndpoint"},
		{"azure://pgarch", map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "AccountName=acct;AccountKey=" + badKey}, "AZURE_STORAGE_CONNECTION_STRING is not a base64 storage account key"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.prefix)
		if err != nil {
			t.Fatal(err)
		}
		_, err = azure.ConfigFromEnv(u, func(k string) string { return tt.env[k] })
		switch {
		case err == nil:
			t.Errorf("%s %v: no error, want %q", tt.prefix, tt.env, tt.wantErr)
		case !strings.Contains(err.Error(), tt.wantErr):
			t.Errorf("%s %v: error %q, want it to contain %q", tt.prefix, tt.env, err, tt.wantErr)
		}
		if err != nil && (strings.Contains(err.Error(), badKey) || strings.Contains(err.Error(), sasSig) || strings.Contains(err.Error(), key)) {
			t.Errorf("%s: error repeats a secret: %v", tt.prefix, err)
		}
	}
}
