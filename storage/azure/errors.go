package azure

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/walnut-pg/walnut/storage"
)

// translateError maps an SDK error from op on key to walnut's terms: only
// a missing blob is ErrNotFound (wal-fetch tells PostgreSQL "not in the
// archive" on it), what another attempt cannot fix is Permanent with a hint
// naming the variable to check, and everything else is left to the retry
// decorator. The text never holds a credential: SDK errors can carry the
// request URL, and with a SAS token that URL holds its signature.
func (s *Store) translateError(op, key string, err error) error {
	if err == nil {
		return nil
	}
	where := strings.TrimSpace("azure " + op + " " + key)
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		var dns *net.DNSError
		if errors.As(err, &dns) && dns.IsNotFound {
			return storage.Permanent(fmt.Errorf("%s: blob service host %s does not exist: check AZURE_STORAGE_ACCOUNT or the endpoint in AZURE_STORAGE_ENDPOINT", where, dns.Name))
		}
		return s.scrub(fmt.Errorf("%s: %w", where, err))
	}
	code := re.ErrorCode
	desc := fmt.Sprintf("HTTP %d", re.StatusCode)
	if code != "" {
		desc = fmt.Sprintf("%s (HTTP %d)", code, re.StatusCode)
	}
	switch {
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return fmt.Errorf("%s: %w", where, storage.ErrNotFound)
	case bloberror.HasCode(err, bloberror.ContainerNotFound, bloberror.ContainerBeingDeleted):
		return storage.Permanent(fmt.Errorf("%s: container %q not found in storage account %q: %s; create it, or check the container in WALNUT_PREFIX and the account in AZURE_STORAGE_ACCOUNT",
			where, s.cfg.Container, s.cfg.Account, desc))
	case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
		return storage.Permanent(fmt.Errorf("%s: access to container %q in storage account %q denied: %s; check %s",
			where, s.cfg.Container, s.cfg.Account, desc, s.cfg.CredentialVar))
	case code == "ResourceNotFound" || code == "AccountIsDisabled" || code == "AccountNotFound":
		return storage.Permanent(fmt.Errorf("%s: storage account %q unusable: %s; check AZURE_STORAGE_ACCOUNT and the endpoint", where, s.cfg.Account, desc))
	case re.StatusCode == http.StatusRequestTimeout, re.StatusCode == http.StatusTooManyRequests, re.StatusCode >= 500:
		return fmt.Errorf("%s: %s", where, desc)
	case re.StatusCode >= 400:
		return storage.Permanent(fmt.Errorf("%s: %s", where, desc))
	}
	return fmt.Errorf("%s: %s", where, desc)
}

// scrub returns err with every credential and URL query cut from its text.
// The result unwraps only to the context errors, so no caller can dig the
// original text out.
func (s *Store) scrub(err error) error {
	msg := urlQuery.ReplaceAllString(err.Error(), "$1?REDACTED")
	for _, secret := range []string{s.cfg.SAS, s.cfg.Key} {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "REDACTED")
		}
	}
	msg = signature.ReplaceAllString(msg, "sig=REDACTED")
	e := &scrubbed{msg: msg}
	switch {
	case errors.Is(err, context.Canceled):
		e.cause = context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		e.cause = context.DeadlineExceeded
	}
	return e
}

var (
	urlQuery  = regexp.MustCompile(`(https?://[^\s"'?]*)\?[^\s"']*`)
	signature = regexp.MustCompile(`(?i)sig=[^&\s"']*`)
)

type scrubbed struct {
	msg   string
	cause error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.cause }
