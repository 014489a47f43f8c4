package s3

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/walnut-pg/walnut/storage"
)

// Error codes that no retry can fix, by what the operator must check.
var (
	credentialCodes = codes("AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidAccessKeyId",
		"SignatureDoesNotMatch", "InvalidSecurity", "NotSignedUp", "InvalidToken", "ExpiredToken",
		"ExpiredTokenException", "InvalidTokenId", "TokenRefreshRequired", "InvalidClientTokenId", "MissingSecurityHeader",
		"AuthorizationQueryParametersError", "RequestTimeTooSkewed", "XMinioInvalidAccessKeyID")
	regionCodes = codes("AuthorizationHeaderMalformed", "PermanentRedirect", "InvalidRegion",
		"IllegalLocationConstraintException", "Redirect", "TemporaryRedirect")
	encryptionCodes = codes("KMS.DisabledException", "KMS.NotFoundException", "KMS.KMSInvalidStateException",
		"KMS.AccessDeniedException", "InvalidEncryptionAlgorithmError", "XMinioKMSNotConfigured",
		"XMinioKMSKeyNotFoundException", "XKMSKeyNotFoundException", "XMinioKMSDefaultKeyAlreadyConfigured",
		"XMinioEncryptionKeyNotFound")
	otherPermanentCodes = codes("InvalidBucketName", "InvalidArgument", "InvalidRequest", "NotImplemented",
		"MethodNotAllowed", "EntityTooLarge", "EntityTooSmall", "KeyTooLongError", "InvalidObjectName",
		"XMinioInvalidObjectName", "XMinioParentIsObject", "XMinioObjectExistsAsDirectory",
		"InvalidObjectState", "InvalidStorageClass", "MissingContentLength", "InvalidPart", "InvalidPartOrder",
		"MalformedXML", "InvalidDigest")
)

func codes(cs ...string) map[string]bool {
	m := make(map[string]bool, len(cs))
	for _, c := range cs {
		m[c] = true
	}
	return m
}

// translateError maps an S3 failure of op on key to walnut's terms:
// NoSuchKey is storage.ErrNotFound; a failure no retry can fix (credentials,
// a missing bucket, a wrong region, a rejected setting) is
// storage.Permanent, one line naming the bucket and what to check; anything
// else (5xx, throttling, resets, timeouts) stays a plain error that the
// retry decorator tries again. No secret survives into the text.
func (s *Store) translateError(op, key string, err error) error {
	if err == nil {
		return nil
	}
	where := op
	if key != "" {
		where += " " + key
	}
	return s.scrub(s.classify(where, err))
}

func (s *Store) classify(where string, err error) error {
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		// A url.Error repeats the request URL, query and all; the cause
		// is what matters.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = fmt.Errorf("%s %s: %w", uerr.Op, s.endpointName(), uerr.Err)
		}
		err = fmt.Errorf("%s: s3 bucket %q: %w", where, s.cfg.bucket, err)
		if check := s.tlsCheck(err); check != "" {
			return storage.Permanent(fmt.Errorf("%w: check %s", err, check))
		}
		return err
	}
	code := resp.Code
	bucket := fmt.Sprintf("s3 bucket %q", s.cfg.bucket)
	detail := code
	if msg := strings.TrimSpace(resp.Message); msg != "" && !strings.EqualFold(msg, code) {
		detail += ": " + strings.TrimSuffix(msg, ".")
	}
	encryption := encryptionCodes[code] || strings.Contains(strings.ToUpper(code), "KMS") || (s.cfg.sse != nil && code == "NotImplemented")
	permanent := func(what, check string) error {
		return storage.Permanent(fmt.Errorf("%s: %s: %s (%s): check %s", where, bucket, what, detail, check))
	}
	switch {
	case code == "NoSuchKey":
		return fmt.Errorf("%s: %w", where, storage.ErrNotFound)
	case code == "NoSuchBucket":
		check := "the bucket name in WALNUT_PREFIX"
		if s.cfg.endpointFrom != "" {
			check += " and " + s.cfg.endpointFrom
		}
		return storage.Permanent(fmt.Errorf("%s: %s does not exist at %s: check %s", where, bucket, s.endpointName(), check))
	case code == "InvalidAccessKeyId" || code == "XMinioInvalidAccessKeyID":
		return permanent("access key not recognised", s.credentialHint(envAccessKey))
	case code == "SignatureDoesNotMatch":
		return permanent("request signature rejected", s.credentialHint(envSecretKey))
	case (code == "ExpiredToken" || code == "ExpiredTokenException" || code == "TokenRefreshRequired") && !s.creds.static:
		// Credentials from a role expire and are fetched anew: make the
		// next attempt fetch them.
		s.creds.provider.Expire()
		return fmt.Errorf("%s: %s: credentials expired (%s); fetching new ones", where, bucket, detail)
	case code == "ExpiredToken" || code == "ExpiredTokenException" || code == "InvalidToken" || code == "InvalidTokenId" || code == "TokenRefreshRequired":
		return permanent("session token rejected", s.credentialHint(envSessionToken))
	case code == "RequestTimeTooSkewed":
		return permanent("clock too far from the server's", "this host's clock (NTP)")
	case credentialCodes[code] || ((resp.StatusCode == 401 || resp.StatusCode == 403) && !encryption):
		return permanent("access denied", s.credentialHint(envAccessKey+"/"+envSecretKey)+" and the bucket's policy")
	case regionCodes[code] || resp.StatusCode == 301:
		check := envRegion
		if resp.Region != "" {
			check += fmt.Sprintf(" (the bucket is in %s)", resp.Region)
		}
		return permanent("wrong region or endpoint", check)
	case code == "InvalidStorageClass":
		return permanent("storage class rejected", envStorageClass)
	case encryption:
		return permanent("server-side encryption rejected", envSSE+" and "+envSSEKMSID)
	case otherPermanentCodes[code]:
		return permanent("request rejected", "the object key and the "+envSSE+"/"+envStorageClass+" settings")
	}
	return fmt.Errorf("%s: %s: %s (HTTP %d)", where, bucket, detail, resp.StatusCode)
}

// credentialHint names the variable to check, or the whole chain when the
// keys did not come from variables.
func (s *Store) credentialHint(vars string) string {
	if s.creds.static {
		return vars
	}
	return vars + " (not set, so the credentials came from AWS_PROFILE and the shared credentials file, AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or the instance role, if from anywhere)"
}

func (s *Store) endpointName() string {
	scheme := "http"
	if s.cfg.secure {
		scheme = "https"
	}
	return scheme + "://" + s.cfg.endpoint
}

// scrub replaces any secret in err's text. The SDK's errors hold none
// that we know of; this makes sure of it.
func (s *Store) scrub(err error) error {
	msg := err.Error()
	clean := msg
	for _, secret := range s.creds.secrets {
		clean = strings.ReplaceAll(clean, secret, "[REDACTED]")
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

// scrubbedError shows a redacted text and keeps the cause for errors.Is
// and storage.IsPermanent.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// tlsCheck names what to check when err is a TLS setup failure, which no
// retry fixes, or returns "".
func (s *Store) tlsCheck(err error) string {
	var (
		unknownCA x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
		record    tls.RecordHeaderError
		verify    *tls.CertificateVerificationError
	)
	endpoint := s.cfg.endpointFrom
	if endpoint == "" {
		endpoint = "the endpoint"
	}
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &invalid), errors.As(err, &verify):
		return envCAFile + " (a PEM file with the CA that signed the server's certificate)"
	case errors.As(err, &hostname):
		return endpoint + ": the host name must match the server's certificate"
	case errors.As(err, &record), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return endpoint + ": the server speaks plain http"
	}
	return ""
}
