package azure

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config is everything New needs. ConfigFromEnv builds it from a prefix URL
// and the environment.
type Config struct {
	Container string
	Prefix    string // "" or ending in "/"
	// Endpoint is the blob service URL without a trailing slash, such as
	// https://acct.blob.core.windows.net or, for Azurite,
	// http://127.0.0.1:10000/devstoreaccount1.
	Endpoint string
	Account  string // for messages, and with Key
	Key      string // base64 shared key; or
	SAS      string // shared access signature, without the leading "?"

	// CredentialVar names the variable the credentials came from, for
	// messages that tell the operator what to check.
	CredentialVar string

	// BlockSize and Concurrency bound an upload's memory: at most
	// Concurrency+1 buffers of BlockSize bytes.
	BlockSize   int64
	Concurrency int
	// IOTimeout cuts a connection on which no byte moved either way.
	IOTimeout time.Duration
	// TryTimeout bounds one HTTP try (one block of an upload; a download
	// resumes where a timed out try stopped).
	TryTimeout time.Duration
	// MaxRetries is the SDK's own retries per request; the retry decorator
	// wraps the whole call again. Kept for uploads from a stream, whose
	// blocks the SDK can resend but the decorator cannot.
	MaxRetries int32
}

// Defaults. 4 MiB blocks allow objects up to 195 GiB (50,000 blocks) with
// 16 MiB of buffers per upload.
const (
	DefaultBlockSize   = 4 << 20
	DefaultConcurrency = 3
	DefaultIOTimeout   = 60 * time.Second
	DefaultTryTimeout  = 15 * time.Minute
	DefaultMaxRetries  = 3
	maxBlocks          = 50000
)

// Variables read by ConfigFromEnv, first name first. The WABS_ names are
// WAL-E's; AZURE_STORAGE_ACCESS_KEY is WAL-G's.
var (
	accountVars  = []string{"AZURE_STORAGE_ACCOUNT", "WABS_ACCOUNT_NAME"}
	keyVars      = []string{"AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCESS_KEY", "WABS_ACCESS_KEY"}
	sasVars      = []string{"AZURE_STORAGE_SAS_TOKEN", "WABS_SAS_TOKEN"}
	endpointVars = []string{"WALNUT_AZURE_ENDPOINT", "AZURE_STORAGE_ENDPOINT"}
)

const connStringVar = "AZURE_STORAGE_CONNECTION_STRING"

// Azurite's well-known development account, which a connection string
// selects with UseDevelopmentStorage=true. The key is published by
// Microsoft and is no secret.
const (
	devAccount  = "devstoreaccount1"
	devKey      = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	devEndpoint = "http://127.0.0.1:10000/devstoreaccount1"
)

func firstSet(getenv func(string) string, names []string) (name, value string) {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return n, v
		}
	}
	return "", ""
}

// ConfigFromEnv reads azure://container/path (or wabs://) and the
// AZURE_STORAGE_* (or WAL-E's WABS_*) variables. No error repeats a
// credential.
func ConfigFromEnv(u *url.URL, getenv func(string) string) (Config, error) {
	c := Config{
		BlockSize:   DefaultBlockSize,
		Concurrency: DefaultConcurrency,
		IOTimeout:   DefaultIOTimeout,
		TryTimeout:  DefaultTryTimeout,
		MaxRetries:  DefaultMaxRetries,
	}
	switch {
	case u.User != nil:
		return c, errors.New("azure prefix cannot carry credentials; set AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN")
	case u.RawQuery != "" || u.Fragment != "":
		return c, errors.New("azure prefix cannot have a query; put a SAS token in AZURE_STORAGE_SAS_TOKEN")
	case u.Host == "":
		return c, fmt.Errorf("azure prefix needs a container: %s://container/path", u.Scheme)
	}
	c.Container = u.Host
	if !validContainer(c.Container) {
		return c, fmt.Errorf("azure container name %q is not 3 to 63 lower-case letters, digits and single hyphens", c.Container)
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		c.Prefix = p + "/"
	}

	if cs := strings.TrimSpace(getenv(connStringVar)); cs != "" {
		if err := c.parseConnectionString(cs); err != nil {
			return c, err
		}
		c.CredentialVar = connStringVar
	} else {
		_, c.Account = firstSet(getenv, accountVars)
		keyVar, key := firstSet(getenv, keyVars)
		sasVar, sas := firstSet(getenv, sasVars)
		switch {
		case key != "":
			c.Key, c.CredentialVar = key, keyVar
		case sas != "":
			c.SAS, c.CredentialVar = strings.TrimPrefix(sas, "?"), sasVar
		default:
			return c, errors.New("azure credentials missing: set AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or AZURE_STORAGE_CONNECTION_STRING (WAL-E's WABS_ACCOUNT_NAME, WABS_ACCESS_KEY, WABS_SAS_TOKEN work too)")
		}
	}
	if name, ep := firstSet(getenv, endpointVars); ep != "" {
		norm, err := normalizeEndpoint(ep)
		if err != nil {
			return c, fmt.Errorf("%s: %w", name, err)
		}
		c.Endpoint = norm
	}
	if c.Key != "" {
		if c.Account == "" {
			return c, fmt.Errorf("%s needs the account name in AZURE_STORAGE_ACCOUNT", c.CredentialVar)
		}
		if _, err := base64.StdEncoding.DecodeString(c.Key); err != nil {
			return c, fmt.Errorf("%s is not a base64 storage account key", c.CredentialVar)
		}
	}
	if c.Endpoint == "" {
		if c.Account == "" {
			return c, errors.New("azure storage account unknown: set AZURE_STORAGE_ACCOUNT, or the blob service URL in AZURE_STORAGE_ENDPOINT")
		}
		if !validAccount(c.Account) {
			return c, fmt.Errorf("azure storage account name %q is not 3 to 24 lower-case letters and digits (AZURE_STORAGE_ACCOUNT)", c.Account)
		}
		c.Endpoint = "https://" + c.Account + ".blob.core.windows.net"
	}
	if c.Account == "" {
		c.Account = accountFromEndpoint(c.Endpoint)
	}
	return c, nil
}

// parseConnectionString reads the keys of an Azure storage connection
// string that matter for the blob service.
func (c *Config) parseConnectionString(cs string) error {
	fields := map[string]string{}
	for _, part := range strings.Split(cs, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			// The part may be a secret: name only its position.
			return fmt.Errorf("%s has a part without \"=\"", connStringVar)
		}
		fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	if strings.EqualFold(fields["usedevelopmentstorage"], "true") {
		c.Account, c.Key, c.Endpoint = devAccount, devKey, devEndpoint
		return nil
	}
	c.Account = fields["accountname"]
	c.Key = fields["accountkey"]
	c.SAS = strings.TrimPrefix(fields["sharedaccesssignature"], "?")
	if c.Key == "" && c.SAS == "" {
		return fmt.Errorf("%s has neither AccountKey nor SharedAccessSignature", connStringVar)
	}
	if ep := fields["blobendpoint"]; ep != "" {
		norm, err := normalizeEndpoint(ep)
		if err != nil {
			return fmt.Errorf("%s BlobEndpoint: %w", connStringVar, err)
		}
		c.Endpoint = norm
		return nil
	}
	if c.Account == "" {
		return fmt.Errorf("%s has neither AccountName nor BlobEndpoint", connStringVar)
	}
	scheme := fields["defaultendpointsprotocol"]
	if scheme == "" {
		scheme = "https"
	}
	suffix := fields["endpointsuffix"]
	if suffix == "" {
		suffix = "core.windows.net"
	}
	norm, err := normalizeEndpoint(scheme + "://" + c.Account + ".blob." + suffix)
	if err != nil {
		return fmt.Errorf("%s: %w", connStringVar, err)
	}
	c.Endpoint = norm
	return nil
}

// normalizeEndpoint checks a blob service URL and drops a trailing slash.
// A query would be a SAS token pasted in the wrong place: refuse it without
// repeating it.
func normalizeEndpoint(ep string) (string, error) {
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("not an http:// or https:// URL of a blob service")
	}
	if u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return "", errors.New("blob service URL cannot carry a query or credentials; put a SAS token in AZURE_STORAGE_SAS_TOKEN")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// accountFromEndpoint guesses the account for messages: the first label of
// acct.blob.core.windows.net, or the first path element of an emulator's
// http://host:port/acct.
func accountFromEndpoint(ep string) string {
	u, err := url.Parse(ep)
	if err != nil {
		return ""
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		first, _, _ := strings.Cut(p, "/")
		return first
	}
	host := u.Hostname()
	if net.ParseIP(host) != nil {
		return ""
	}
	first, _, _ := strings.Cut(host, ".")
	return first
}

func validAccount(a string) bool {
	if len(a) < 3 || len(a) > 24 {
		return false
	}
	return strings.Trim(a, "abcdefghijklmnopqrstuvwxyz0123456789") == ""
}

// validContainer follows Azure's rule for container names, so that a typo
// is refused here with its reason rather than by the service as
// InvalidResourceName.
func validContainer(c string) bool {
	if c == "$root" {
		return true
	}
	if len(c) < 3 || len(c) > 63 || c[0] == '-' || c[len(c)-1] == '-' || strings.Contains(c, "--") {
		return false
	}
	return strings.Trim(c, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}
