// Package gcs stores objects in a Google Cloud Storage bucket
// (gs://bucket/path).
package gcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	gstorage "cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/internal/exactsize"
	"github.com/walnut-pg/walnut/storage/internal/idleconn"
)

// Store is a bucket, or a path inside one.
type Store struct {
	cfg    Config
	client *gstorage.Client
	bucket *gstorage.BucketHandle
}

var _ storage.Store = (*Store)(nil)

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
	base := idleconn.Transport(cfg.IOTimeout, 15*time.Second)
	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		// Named here rather than left to the library, which reads
		// STORAGE_EMULATOR_HOST from the process environment only, not
		// from an envdir.
		opts = append(opts,
			option.WithHTTPClient(&http.Client{Transport: base}),
			option.WithEndpoint(cfg.Endpoint+"/storage/v1/"))
	} else {
		credOpts := []option.ClientOption{option.WithScopes(gstorage.ScopeFullControl)}
		if cfg.CredentialsFile != "" {
			typ, err := credentialsType(cfg.CredentialsFile)
			if err != nil {
				return nil, storage.Permanent(fmt.Errorf("GOOGLE_APPLICATION_CREDENTIALS: %w", err))
			}
			credOpts = append(credOpts, option.WithAuthCredentialsFile(typ, cfg.CredentialsFile))
		}
		rt, err := htransport.NewTransport(ctx, markTransport{base}, credOpts...)
		if err != nil {
			return nil, storage.Permanent(fmt.Errorf("google cloud credentials for bucket %q: %s; set GOOGLE_APPLICATION_CREDENTIALS to a service account key file",
				cfg.Bucket, oneLine(err.Error())))
		}
		opts = append(opts, option.WithHTTPClient(&http.Client{Transport: credentialTransport{rt}}))
	}
	opts = append(opts, gstorage.WithDisabledClientMetrics())
	client, err := gstorage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("google cloud storage client for bucket %q: %s", cfg.Bucket, oneLine(err.Error()))
	}
	return &Store{cfg: cfg, client: client, bucket: client.Bucket(cfg.Bucket)}, nil
}

// retry is the library's retry setting for one call, extra added. Every
// call is retried, uploads included: an overwrite with the same content is
// harmless, and a Put is all or nothing anyway.
//
// It is given to each handle afresh, never through Client.SetRetry:
// Retryer on a handle that already has settings changes them in place, for
// every handle that shares them.
func (s *Store) retry(extra ...gstorage.RetryOption) []gstorage.RetryOption {
	return append([]gstorage.RetryOption{
		gstorage.WithPolicy(gstorage.RetryAlways),
		gstorage.WithMaxAttempts(s.cfg.MaxAttempts),
		gstorage.WithBackoff(gax.Backoff{Initial: 500 * time.Millisecond, Max: 8 * time.Second, Multiplier: 2}),
	}, extra...)
}

// credentialsType reads the "type" of a credentials file, which the
// library wants named so that a file of an unexpected kind is refused.
func credentialsType(path string) (option.CredentialsType, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var f struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Type == "" {
		return "", fmt.Errorf("%s is not a Google credentials JSON file with a \"type\"", path)
	}
	return option.CredentialsType(f.Type), nil
}

func (s *Store) object(key string, extra ...gstorage.RetryOption) *gstorage.ObjectHandle {
	return s.bucket.Object(s.cfg.Prefix + key).Retryer(s.retry(extra...)...)
}

// Put uploads r with one resumable upload in chunks of ChunkSize. The
// object appears only when the upload is finalized; a failed or cancelled
// one leaves nothing, because the writer's context is cancelled before it
// could finalize.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if size >= 0 {
		r = exactsize.Reader(r, size)
	}
	src := &sourceReader{r: storage.ContextReader(ctx, r)}
	// Starting an upload is retried until the context ends, whatever
	// MaxAttempts says, and Put has no deadline: count failures here, and
	// start counting again whenever a chunk got through.
	var failures atomic.Int32
	bounded := gstorage.WithErrorFunc(func(err error) bool {
		return gstorage.ShouldRetry(err) && int(failures.Add(1)) < s.cfg.MaxAttempts
	})
	w := s.object(key, bounded).NewWriter(ctx)
	w.ChunkSize = s.cfg.ChunkSize
	w.ChunkRetryDeadline = s.cfg.ChunkRetryDeadline
	w.ProgressFunc = func(int64) { failures.Store(0) }
	w.ContentType = "application/octet-stream"
	_, err := io.Copy(w, src)
	if err != nil {
		// Cancel first: closing the writer would finalize what it has.
		cancel()
		w.Close()
		if src.err != nil {
			return fmt.Errorf("gcs put %s: %w", key, src.err)
		}
		return s.translateError(ctx, "put", key, err)
	}
	if err := w.Close(); err != nil {
		return s.translateError(ctx, "put", key, err)
	}
	return nil
}

// sourceReader remembers the source's own failure, so that Put reports it
// as it is and not as the service's.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	r, err := s.object(key).NewReader(ctx)
	if err != nil {
		return nil, s.translateError(ctx, "get", key, err)
	}
	return &readCloser{s: s, key: key, r: r}, nil
}

type readCloser struct {
	s   *Store
	key string
	r   *gstorage.Reader
}

func (r *readCloser) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("gcs read %s: %s", r.key, oneLine(err.Error()))
	}
	return n, err
}

func (r *readCloser) Close() error { return r.r.Close() }

func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	attrs, err := s.object(key).Attrs(ctx)
	if err != nil {
		return storage.ObjectInfo{}, s.translateError(ctx, "stat", key, err)
	}
	return storage.ObjectInfo{Key: key, Size: attrs.Size, ModTime: attrs.Updated}, nil
}

// List relies on the service's order: Cloud Storage lists object names in
// ascending lexicographic order, page after page.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	q := &gstorage.Query{Prefix: s.cfg.Prefix + prefix}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Updated"}); err != nil {
		return err
	}
	it := s.bucket.Retryer(s.retry()...).Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if err == iterator.Done {
			return nil
		}
		if err != nil {
			return s.translateError(ctx, "list", prefix, err)
		}
		if attrs.Name == "" {
			continue
		}
		info := storage.ObjectInfo{Key: strings.TrimPrefix(attrs.Name, s.cfg.Prefix), Size: attrs.Size, ModTime: attrs.Updated}
		if err := fn(info); err != nil {
			return err
		}
	}
}

func (s *Store) Delete(ctx context.Context, key string) error {
	err := s.object(key).Delete(ctx)
	if err == nil {
		return nil
	}
	err = s.translateError(ctx, "delete", key, err)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

func (s *Store) Close() error { return s.client.Close() }
