// Package gcs stores objects in a Google Cloud Storage bucket
// (gs://bucket/path), through the service's JSON API.
package gcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/oauth2"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/internal/exactsize"
	"github.com/walnut-pg/walnut/storage/internal/idleconn"
)

// defaultBase is Google Cloud Storage itself.
const defaultBase = "https://storage.googleapis.com"

// Store is a bucket, or a path inside one.
type Store struct {
	cfg    Config
	base   string
	client *http.Client
}

var (
	_ storage.Store       = (*Store)(nil)
	_ storage.RangeReader = (*Store)(nil)
	_ storage.Creator     = (*Store)(nil)
)

// Open returns the store for gs://bucket/path, with settings and
// credentials from getenv.
func Open(ctx context.Context, u *url.URL, getenv func(string) string) (storage.Store, error) {
	cfg, err := ConfigFromEnv(u, getenv)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg)
}

// New returns the store cfg describes. It finds credentials but does not
// talk to the bucket.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = DefaultIOTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 1
	}
	transport := idleconn.Transport(cfg.IOTimeout, 15*time.Second)
	// A 308 is the service's "resume incomplete", never a redirect.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s := &Store{cfg: cfg, base: defaultBase, client: &http.Client{Transport: transport, CheckRedirect: noRedirect}}
	if cfg.Endpoint != "" {
		// An emulator takes no authentication.
		s.base = cfg.Endpoint
		return s, nil
	}
	ts, err := credentials(ctx, cfg, transport)
	if err != nil {
		if cfg.CredentialsFile != "" {
			return nil, storage.Permanent(fmt.Errorf("GOOGLE_APPLICATION_CREDENTIALS: %s", clip(oneLine(err.Error()), 200)))
		}
		return nil, storage.Permanent(fmt.Errorf("google cloud credentials for bucket %q: %s; set GOOGLE_APPLICATION_CREDENTIALS to a service account key file",
			cfg.Bucket, clip(oneLine(err.Error()), 200)))
	}
	s.client = &http.Client{Transport: &oauth2.Transport{Source: ts, Base: transport}, CheckRedirect: noRedirect}
	return s, nil
}

// objectURL is the metadata URL of key; "/" in a name must be escaped.
func (s *Store) objectURL(key string) string {
	return s.base + "/storage/v1/b/" + url.PathEscape(s.cfg.Bucket) + "/o/" + url.PathEscape(s.cfg.Prefix+key)
}

func (s *Store) bucketURL() string {
	return s.base + "/storage/v1/b/" + url.PathEscape(s.cfg.Bucket)
}

// newBackOff paces the attempts of one call, or of one chunk of an upload.
func newBackOff() backoff.BackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     500 * time.Millisecond,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          2,
		MaxInterval:         8 * time.Second,
	}
}

// retryable reports whether another attempt after err may succeed.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var aerr *apiError
	if errors.As(err, &aerr) {
		return aerr.retryable()
	}
	var cred *credentialError
	if errors.As(err, &cred) {
		return cred.transient()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return false
	}
	return true
}

// do sends the request newReq makes, up to MaxAttempts times while it
// fails in a way another attempt may fix, and returns the response of a
// success. Any other answer is an *apiError.
func (s *Store) do(ctx context.Context, newReq func(ctx context.Context) (*http.Request, error)) (*http.Response, error) {
	return backoff.Retry(ctx, func() (*http.Response, error) {
		req, err := newReq(ctx)
		if err != nil {
			return nil, backoff.Permanent(err)
		}
		resp, err := s.client.Do(req)
		if err == nil && resp.StatusCode/100 != 2 {
			err = readAPIError(resp)
		}
		if err != nil {
			if !retryable(ctx, err) {
				return nil, backoff.Permanent(err)
			}
			return nil, err
		}
		return resp, nil
	}, backoff.WithBackOff(newBackOff()), backoff.WithMaxTries(uint(s.cfg.MaxAttempts)), backoff.WithMaxElapsedTime(0))
}

func get(u string) func(ctx context.Context) (*http.Request, error) {
	return func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	}
}

var errBucketMissing = errors.New("bucket missing")

// bucketExists returns errBucketMissing if the bucket is known not to
// exist, and nil otherwise.
func (s *Store) bucketExists(ctx context.Context) error {
	resp, err := s.do(ctx, get(s.bucketURL()+"?fields=name"))
	if err == nil {
		resp.Body.Close()
		return nil
	}
	var aerr *apiError
	if errors.As(err, &aerr) && aerr.code == http.StatusNotFound {
		return errBucketMissing
	}
	return nil
}

func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rng, err := s.GetRange(ctx, key, 0, "")
	if err != nil {
		return nil, err
	}
	return rng.Body, nil
}

// GetRange pins the version by generation (ifGenerationMatch): the service
// answers 412 once the name holds another object, 404 once it holds none.
func (s *Store) GetRange(ctx context.Context, key string, offset int64, version string) (*storage.Range, error) {
	u := s.objectURL(key) + "?alt=media"
	if version != "" {
		u += "&ifGenerationMatch=" + url.QueryEscape(version)
	}
	resp, err := s.do(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err == nil && offset > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		}
		return req, err
	})
	if err != nil {
		var aerr *apiError
		if version != "" && errors.As(err, &aerr) && aerr.code == http.StatusPreconditionFailed {
			return nil, storage.Changed("gcs get", key, "its generation is no longer "+version)
		}
		return nil, s.translateError(ctx, "get", key, err)
	}
	size := resp.ContentLength
	if offset > 0 {
		if resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			return nil, fmt.Errorf("gcs get %s: asked for the bytes from %d, got HTTP %d", key, offset, resp.StatusCode)
		}
		size = storage.ParseContentRange(resp.Header.Get("Content-Range"))
	}
	gen := resp.Header.Get("X-Goog-Generation")
	if version != "" && gen != version {
		resp.Body.Close()
		return nil, storage.Changed("gcs get", key, "its generation is no longer "+version)
	}
	return &storage.Range{Body: &readCloser{key: key, r: resp.Body}, Version: gen, Size: size}, nil
}

type readCloser struct {
	key string
	r   io.ReadCloser
}

func (r *readCloser) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = &oneLineError{msg: fmt.Sprintf("gcs read %s: %s", r.key, oneLine(err.Error())), err: err}
	}
	return n, err
}

func (r *readCloser) Close() error { return r.r.Close() }

// objectAttrs is the part of an object's metadata walnut reads; the JSON
// API gives the size as a string.
type objectAttrs struct {
	Name    string    `json:"name"`
	Size    string    `json:"size"`
	Updated time.Time `json:"updated"`
}

func (a objectAttrs) info(prefix string) (storage.ObjectInfo, error) {
	size, err := strconv.ParseInt(a.Size, 10, 64)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("object %q has size %q", a.Name, a.Size)
	}
	return storage.ObjectInfo{Key: strings.TrimPrefix(a.Name, prefix), Size: size, ModTime: a.Updated}, nil
}

func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	resp, err := s.do(ctx, get(s.objectURL(key)+"?fields=name,size,updated"))
	if err != nil {
		return storage.ObjectInfo{}, s.translateError(ctx, "stat", key, err)
	}
	defer resp.Body.Close()
	var attrs objectAttrs
	if err := json.NewDecoder(resp.Body).Decode(&attrs); err != nil {
		return storage.ObjectInfo{}, s.translateError(ctx, "stat", key, fmt.Errorf("reading metadata: %w", err))
	}
	info, err := attrs.info(s.cfg.Prefix)
	if err != nil {
		return storage.ObjectInfo{}, storage.Permanent(fmt.Errorf("gcs stat %s: %w", key, err))
	}
	info.Key = key
	return info, nil
}

// List relies on the service's order: Cloud Storage lists object names in
// ascending lexicographic order, page after page.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	token := ""
	for {
		q := url.Values{
			"prefix": {s.cfg.Prefix + prefix},
			"fields": {"items(name,size,updated),nextPageToken"},
		}
		if token != "" {
			q.Set("pageToken", token)
		}
		resp, err := s.do(ctx, get(s.bucketURL()+"/o?"+q.Encode()))
		if err != nil {
			return s.translateError(ctx, "list", prefix, err)
		}
		var page struct {
			Items         []objectAttrs `json:"items"`
			NextPageToken string        `json:"nextPageToken"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return s.translateError(ctx, "list", prefix, fmt.Errorf("reading a page: %w", err))
		}
		for _, a := range page.Items {
			if a.Name == "" {
				continue
			}
			info, err := a.info(s.cfg.Prefix)
			if err != nil {
				return storage.Permanent(fmt.Errorf("gcs list %s: %w", prefix, err))
			}
			if err := fn(info); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" {
			return nil
		}
		token = page.NextPageToken
	}
}

func (s *Store) Delete(ctx context.Context, key string) error {
	resp, err := s.do(ctx, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodDelete, s.objectURL(key), nil)
	})
	if err == nil {
		resp.Body.Close()
		return nil
	}
	err = s.translateError(ctx, "delete", key, err)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

func (s *Store) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// sizeReader applies the known size of a Put to its source.
func sizeReader(ctx context.Context, r io.Reader, size int64) *sourceReader {
	if size >= 0 {
		r = exactsize.Reader(r, size)
	}
	return &sourceReader{r: storage.ContextReader(ctx, r)}
}
