// Package s3 is the s3:// backend, for AWS S3 and the servers that speak
// its API (MinIO, Ceph RGW), through minio-go.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/minio/minio-go/v7"

	"github.com/walnut-pg/walnut/storage"
)

// minio-go would try each request up to ten times on its own. walnut
// wraps every store in storage.WithRetry, and two layers of retries
// multiply: against a dead server every call would take ten times as
// long. So minio-go tries once, storage.WithRetry retries whole calls,
// and Put retries the parts of a multipart upload itself (put.go), since
// those are what storage.WithRetry cannot retry without the whole source.
const sdkAttempts = 1

// Store keeps objects in one bucket under a key prefix.
type Store struct {
	cfg    config
	creds  creds
	client *minio.Client
	core   minio.Core
	tr     *http.Transport
	log    *slog.Logger
	// bucketSeen is set once the bucket answered, so a not-found Stat need
	// not ask again whether the bucket exists.
	bucketSeen atomic.Bool
	// unrepeatable is set once a rewindable source gave other bytes when
	// read again: its MD5 cannot be taken in advance.
	unrepeatable atomic.Bool
}

var (
	_ storage.Store       = (*Store)(nil)
	_ storage.RangeReader = (*Store)(nil)
	_ storage.Creator     = (*Store)(nil)
)

// Open returns the store for u, s3://bucket/path, with settings and
// credentials from getenv. It makes no request: a wrong bucket or key is
// reported by the first call, naming what to check. Retries within an
// upload are logged to log (nil: discarded), as storage.WithRetry's are.
func Open(ctx context.Context, u *url.URL, getenv func(string) string, log *slog.Logger) (storage.Store, error) {
	s, err := open(u, getenv)
	if err != nil {
		return nil, err
	}
	if log != nil {
		s.log = log
	}
	return s, nil
}

func open(u *url.URL, getenv func(string) string) (*Store, error) {
	cfg, err := parseConfig(u, getenv)
	if err != nil {
		return nil, err
	}
	cr, err := newCreds(getenv)
	if err != nil {
		return nil, err
	}
	tr, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}
	client, err := minio.New(cfg.endpoint, &minio.Options{
		Creds:        cr.provider,
		Secure:       cfg.secure,
		Transport:    tr,
		Region:       cfg.region,
		BucketLookup: cfg.lookup,
		MaxRetries:   sdkAttempts,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %s: %w", cfg.endpoint, err)
	}
	client.SetAppInfo("walnut", "1")
	// minio-go would send AWS traffic to the dual-stack endpoints; the
	// plain regional ones are what the AWS CLI and WAL-E use, and what
	// VPC endpoint setups expect.
	client.SetS3EnableDualstack(false)
	return &Store{cfg: cfg, creds: cr, client: client, core: minio.Core{Client: client}, tr: tr, log: slog.New(slog.DiscardHandler)}, nil
}

// object returns the full object name of key, refusing keys that S3
// would store under a name other than the one asked for, or that could
// climb out of the prefix on servers that clean paths (MinIO does).
func (s *Store) object(key string) (string, error) {
	if storage.KeyProblem(key) != "" {
		return "", storage.Permanent(fmt.Errorf("invalid key %q: want a relative \"/\"-separated path without empty, \".\" or \"..\" segments", key))
	}
	return s.cfg.prefix + key, nil
}

func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rng, err := s.GetRange(ctx, key, 0, "")
	if err != nil {
		return nil, err
	}
	return rng.Body, nil
}

// GetRange pins the version by ETag (If-Match): S3 answers 412 once the key
// holds another object, or 404 once it holds none.
func (s *Store) GetRange(ctx context.Context, key string, offset int64, version string) (*storage.Range, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	var opts minio.GetObjectOptions
	if offset > 0 {
		// Never "bytes=0-": S3 refuses any range of an empty object.
		if err := opts.SetRange(offset, 0); err != nil {
			return nil, storage.Permanent(fmt.Errorf("get %s: %w", key, err))
		}
	}
	if version != "" {
		if err := opts.SetMatchETag(version); err != nil {
			return nil, storage.Permanent(fmt.Errorf("get %s: %w", key, err))
		}
	}
	body, info, header, err := s.core.GetObject(ctx, s.cfg.bucket, name, opts)
	if err != nil {
		var resp minio.ErrorResponse
		if version != "" && errors.As(err, &resp) && (resp.Code == "PreconditionFailed" || resp.StatusCode == http.StatusPreconditionFailed) {
			return nil, storage.Changed("get", key, "its ETag is no longer "+version)
		}
		return nil, s.translateError("get", key, err)
	}
	s.bucketSeen.Store(true)
	size := info.Size
	if offset > 0 {
		size = storage.ParseContentRange(header.Get("Content-Range"))
	}
	etag := strings.Trim(info.ETag, `"`)
	if version != "" && etag != version {
		// A server that ignores If-Match must not splice two objects.
		body.Close()
		return nil, storage.Changed("get", key, "its ETag is no longer "+version)
	}
	return &storage.Range{Body: &objectReader{ReadCloser: body, s: s, key: key}, Version: etag, Size: size}, nil
}

// objectReader names the object in a failure while its body is read.
type objectReader struct {
	io.ReadCloser
	s   *Store
	key string
}

func (r *objectReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = r.s.translateError("read", r.key, err)
	}
	return n, err
}

func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	name, err := s.object(key)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	info, err := s.client.StatObject(ctx, s.cfg.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		err = s.translateError("stat", key, err)
		if errors.Is(err, storage.ErrNotFound) {
			// A HEAD answer has no body, and AWS sends a missing bucket
			// and a missing key as the same bare 404.
			if berr := s.checkBucket(ctx); berr != nil {
				return storage.ObjectInfo{}, berr
			}
		}
		return storage.ObjectInfo{}, err
	}
	s.bucketSeen.Store(true)
	return storage.ObjectInfo{Key: key, Size: info.Size, ModTime: info.LastModified}, nil
}

// checkBucket returns the error for a missing bucket, or nil once the
// bucket is known to exist.
func (s *Store) checkBucket(ctx context.Context) error {
	if s.bucketSeen.Load() {
		return nil
	}
	ok, err := s.client.BucketExists(ctx, s.cfg.bucket)
	switch {
	case err != nil:
		return s.translateError("stat", "", err)
	case !ok:
		return s.translateError("stat", "", minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: http.StatusNotFound})
	}
	s.bucketSeen.Store(true)
	return nil
}

// List relies on S3 listing keys in ascending UTF-8 byte order, which the
// API promises for general-purpose buckets, 1000 keys a page.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetchOwner := false
	opts := minio.ListObjectsOptions{Prefix: s.cfg.prefix + prefix, Recursive: true, FetchOwner: &fetchOwner}
	for obj := range s.client.ListObjectsIter(ctx, s.cfg.bucket, opts) {
		if obj.Err != nil {
			return s.translateError("list", prefix, obj.Err)
		}
		s.bucketSeen.Store(true)
		key, ok := strings.CutPrefix(obj.Key, s.cfg.prefix)
		// A key ending in "/" is a folder marker some consoles create;
		// walnut never writes one.
		if !ok || key == "" || strings.HasSuffix(key, "/") {
			continue
		}
		if err := fn(storage.ObjectInfo{Key: key, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	// minio-go ends a listing quietly when its context is done.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	return nil
}

func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	err = s.client.RemoveObject(ctx, s.cfg.bucket, name, minio.RemoveObjectOptions{})
	if err = s.translateError("delete", key, err); errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

func (s *Store) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}
