package s3

import (
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/walnut-pg/walnut/storage"
)

func testStore(t *testing.T, env ...string) *Store {
	t.Helper()
	u, _ := url.Parse("s3://b/p")
	s, err := open(u, envOf(env...))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The classification of the errors a real server cannot easily be made
// to send here: throttling, server errors, regions, expiring tokens.
func TestClassify(t *testing.T) {
	const secret = "hunter2-secret"
	static := testStore(t, "AWS_ACCESS_KEY_ID", "AKIA", "AWS_SECRET_ACCESS_KEY", secret, "AWS_SESSION_TOKEN", "tok-"+secret)
	chain := testStore(t, "AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	resp := func(status int, code, msg string) error {
		return minio.ErrorResponse{StatusCode: status, Code: code, Message: msg, BucketName: "b"}
	}
	tests := []struct {
		name      string
		s         *Store
		err       error
		permanent bool
		notFound  bool
		want      string
	}{
		{"missing key", static, resp(404, "NoSuchKey", "The specified key does not exist."), false, true, "get k: object not found"},
		{"throttled", static, resp(503, "SlowDown", "Please reduce your request rate."), false, false, `get k: s3 bucket "b": SlowDown: Please reduce your request rate (HTTP 503)`},
		{"server error", static, resp(500, "InternalError", "We encountered an internal error."), false, false, "InternalError"},
		{"bad gateway", static, resp(502, "502 Bad Gateway", "<html>"), false, false, "HTTP 502"},
		{"request timeout", static, resp(400, "RequestTimeout", "Your socket connection to the server was not read from"), false, false, "RequestTimeout"},
		{"access denied", static, resp(403, "AccessDenied", "Access Denied."), true, false,
			`get k: s3 bucket "b": access denied (AccessDenied: Access Denied): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the bucket's policy`},
		{"forbidden without code", static, resp(403, "403 Forbidden", ""), true, false, "access denied"},
		{"access denied, chain", chain, resp(403, "AccessDenied", "Access Denied."), true, false, "not set, so the credentials came from AWS_PROFILE"},
		{"wrong region", static, minio.ErrorResponse{StatusCode: 400, Code: "AuthorizationHeaderMalformed", Region: "eu-west-1"}, true, false,
			"wrong region or endpoint (AuthorizationHeaderMalformed): check AWS_REGION (the bucket is in eu-west-1)"},
		{"redirect", static, resp(301, "PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint."), true, false, "check AWS_REGION"},
		{"expired static token", static, resp(400, "ExpiredToken", "The provided token has expired."), true, false, "check AWS_SESSION_TOKEN"},
		{"expired role token", chain, resp(400, "ExpiredToken", "The provided token has expired."), false, false, "credentials expired"},
		{"clock", static, resp(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large."), true, false, "NTP"},
		{"KMS", static, resp(400, "KMS.NotFoundException", "Invalid keyId"), true, false, "check WALNUT_S3_SSE and WALNUT_S3_SSE_KMS_ID"},
		{"KMS access", static, resp(403, "KMS.AccessDeniedException", "denied"), true, false, "check WALNUT_S3_SSE"},
		{"storage class", static, resp(400, "InvalidStorageClass", "The storage class you specified is not valid"), true, false, "check WALNUT_S3_STORAGE_CLASS"},
		{"archived object", static, resp(403, "InvalidObjectState", "The operation is not valid for the object's storage class"), true, false, "InvalidObjectState"},
		{"reset", static, &url.Error{Op: "Get", URL: "http://s3.amazonaws.com/b/p/k?X-Amz-Signature=abc", Err: syscall.ECONNRESET}, false, false,
			`get k: s3 bucket "b": Get https://s3.amazonaws.com: connection reset by peer`},
		{"untrusted certificate", static, &url.Error{Op: "Get", URL: "https://x", Err: x509.UnknownAuthorityError{}}, true, false, "check WALNUT_S3_CA_CERT_FILE"},
		{"secret echoed", static, resp(400, "InvalidRequest", "bad header "+secret+" and tok-"+secret), true, false, "bad header [REDACTED] and [REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.translateError("get", "k", tt.err)
			if storage.IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v: %v", !tt.permanent, tt.permanent, err)
			}
			if errors.Is(err, storage.ErrNotFound) != tt.notFound {
				t.Errorf("errors.Is(ErrNotFound) = %v, want %v: %v", !tt.notFound, tt.notFound, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "X-Amz-Signature") {
				t.Errorf("err = %q shows a secret or a signed URL", err)
			}
		})
	}
}
