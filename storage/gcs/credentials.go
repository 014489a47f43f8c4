package gcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// scope lets walnut read, write and delete objects, and nothing more.
const scope = "https://www.googleapis.com/auth/devstorage.read_write"

// credentials finds the token source for cfg: the key file named by
// GOOGLE_APPLICATION_CREDENTIALS, or else the default credentials (gcloud's,
// or the instance's service account from the metadata server). Tokens are
// fetched over base, so that a token endpoint that stops answering is cut
// like the service itself.
func credentials(ctx context.Context, cfg Config, base http.RoundTripper) (oauth2.TokenSource, error) {
	rec := &recordingTransport{rt: base}
	// The token source keeps this context for every later fetch: it must
	// outlive the one New was called with.
	ctx = context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, &http.Client{Transport: rec})
	var creds *google.Credentials
	if cfg.CredentialsFile != "" {
		b, err := os.ReadFile(cfg.CredentialsFile)
		if err != nil {
			return nil, err
		}
		var f struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(b, &f); err != nil || f.Type == "" {
			return nil, fmt.Errorf("%s is not a Google credentials JSON file with a \"type\"", cfg.CredentialsFile)
		}
		// The type is named so that a file of an unexpected kind is
		// refused rather than trusted.
		creds, err = google.CredentialsFromJSONWithType(ctx, b, google.CredentialsType(f.Type), scope)
		if err != nil {
			return nil, fmt.Errorf("%s: %s", cfg.CredentialsFile, clip(oneLine(err.Error()), 160))
		}
	} else {
		var err error
		creds, err = google.FindDefaultCredentials(ctx, scope)
		if err != nil {
			return nil, err
		}
	}
	return &tokenSource{ts: oauth2.ReuseTokenSource(nil, creds.TokenSource), rec: rec}, nil
}

// tokenSource marks its failures as credentialError, and tells a token
// endpoint that could not be reached from one that refused: the oauth2
// package keeps only the text of a transport error, so the transport
// records it on the side. Fetches are serialized, which makes the record
// belong to the fetch that failed.
type tokenSource struct {
	mu  sync.Mutex
	ts  oauth2.TokenSource
	rec *recordingTransport
}

func (t *tokenSource) Token() (*oauth2.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rec.reset()
	tok, err := t.ts.Token()
	if err != nil {
		var ne net.Error
		return nil, &credentialError{err: err, unreachable: t.rec.failed() || errors.As(err, &ne)}
	}
	return tok, nil
}

type recordingTransport struct {
	rt  http.RoundTripper
	mu  sync.Mutex
	err bool
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if err != nil {
		r.mu.Lock()
		r.err = true
		r.mu.Unlock()
	}
	return resp, err
}

func (r *recordingTransport) reset() {
	r.mu.Lock()
	r.err = false
	r.mu.Unlock()
}

func (r *recordingTransport) failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// credentialError is a failure to get an access token.
type credentialError struct {
	err         error
	unreachable bool
}

func (e *credentialError) Error() string { return "cannot get a Google access token: " + e.err.Error() }
func (e *credentialError) Unwrap() error { return e.err }

// transient reports whether getting a token failed for a reason another
// attempt may not meet: the token endpoint or metadata server unreachable.
func (e *credentialError) transient() bool { return e.unreachable }
