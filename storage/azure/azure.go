// Package azure stores objects as block blobs in an Azure Blob Storage
// container (azure://container/path, WAL-E's wabs://).
package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/internal/exactsize"
	"github.com/walnut-pg/walnut/storage/internal/idleconn"
	"github.com/walnut-pg/walnut/storage/internal/sizing"
)

// Store is a container, or a path inside one.
type Store struct {
	cfg       Config
	client    *container.Client
	closeIdle func()
	bufs      sync.Pool // of *[]byte, BlockSize long
}

var (
	_ storage.Store       = (*Store)(nil)
	_ storage.RangeReader = (*Store)(nil)
	_ storage.Creator     = (*Store)(nil)
)

// Open returns the store for azure://container/path (or wabs://), with
// settings and credentials from getenv.
func Open(ctx context.Context, u *url.URL, getenv func(string) string) (storage.Store, error) {
	cfg, err := ConfigFromEnv(u, getenv)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// New returns the store cfg describes. It does not talk to the service.
func New(cfg Config) (*Store, error) {
	if cfg.BlockSize <= 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = DefaultIOTimeout
	}
	transport := idleconn.Transport(cfg.IOTimeout, 15*time.Second)
	opts := &container.ClientOptions{}
	opts.Transport = &http.Client{Transport: transport}
	opts.Retry = policy.RetryOptions{
		MaxRetries:    cfg.MaxRetries,
		TryTimeout:    cfg.TryTimeout,
		RetryDelay:    500 * time.Millisecond,
		MaxRetryDelay: 8 * time.Second,
		ShouldRetry:   shouldRetry,
	}
	if cfg.MaxRetries <= 0 {
		// The SDK reads 0 as "its default"; here it means none, as -1 does there.
		opts.Retry.MaxRetries = -1
	}
	opts.Telemetry.Disabled = true
	s := &Store{cfg: cfg, closeIdle: transport.CloseIdleConnections}
	containerURL := cfg.Endpoint + "/" + url.PathEscape(cfg.Container)
	var err error
	switch {
	case cfg.Key != "":
		cred, kerr := container.NewSharedKeyCredential(cfg.Account, cfg.Key)
		if kerr != nil {
			return nil, fmt.Errorf("%s is not a valid storage account key", cfg.CredentialVar)
		}
		s.client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, opts)
	case cfg.SAS != "":
		s.client, err = container.NewClientWithNoCredential(containerURL+"?"+cfg.SAS, opts)
	default:
		return nil, fmt.Errorf("azure container %q: no credentials", cfg.Container)
	}
	if err != nil {
		return nil, s.scrub(fmt.Errorf("azure container %q: %w", cfg.Container, err))
	}
	return s, nil
}

// shouldRetry is the SDK's own choice, except that a host that does not
// exist (a mistyped account) fails at once.
func shouldRetry(resp *http.Response, err error) bool {
	if err != nil {
		var dns *net.DNSError
		return !errors.As(err, &dns) || !dns.IsNotFound
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func (s *Store) blob(key string) *blockblob.Client {
	return s.client.NewBlockBlobClient(s.cfg.Prefix + key)
}

// Put uploads r as one blob. Nothing is visible until the final Put Blob or
// Put Block List: blocks staged by a failed or cancelled upload are never
// committed, and Azure discards them after a week.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.put(ctx, "put", key, r, size, nil)
}

// Create uploads as Put does, with If-None-Match: * on the request that
// makes the blob visible: Azure refuses it (409 BlobAlreadyExists, or 412
// ConditionNotMet) when the name holds a blob, committed by then or not,
// so of two writers exactly one wins, whatever the blob's size.
func (s *Store) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	anyETag := azcore.ETagAny
	cond := &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &anyETag}}
	return s.put(ctx, "create", key, r, size, cond)
}

func (s *Store) put(ctx context.Context, op, key string, r io.Reader, size int64, cond *blob.AccessConditions) error {
	rewind := sizing.Rewinder(r)
	if size >= 0 {
		r = exactsize.Reader(r, size)
	}
	err := s.upload(ctx, s.blob(key), r, size, rewind, cond)
	if err == nil {
		return nil
	}
	var src *sourceError
	if errors.As(err, &src) {
		// The reader's own failure, not the service's.
		return fmt.Errorf("azure %s %s: %w", op, key, src.err)
	}
	if cond != nil && bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet) {
		return storage.Exists("azure "+op, key)
	}
	return s.translateError(op, key, err)
}

func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rng, err := s.GetRange(ctx, key, 0, "")
	if err != nil {
		return nil, err
	}
	return rng.Body, nil
}

// GetRange pins the version by ETag (If-Match). The SDK's own retry
// reader is not used: storage.WithRetry resumes a broken read, as the one
// retry loop, with the same waits and limits as every other call.
func (s *Store) GetRange(ctx context.Context, key string, offset int64, version string) (*storage.Range, error) {
	opts := &blob.DownloadStreamOptions{}
	if offset > 0 {
		opts.Range = blob.HTTPRange{Offset: offset}
	}
	if version != "" {
		etag := azcore.ETag(version)
		opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &etag}}
	}
	resp, err := s.blob(key).DownloadStream(ctx, opts)
	if err != nil {
		if version != "" && bloberror.HasCode(err, bloberror.ConditionNotMet) {
			return nil, storage.Changed("azure get", key, "its ETag is no longer "+version)
		}
		return nil, s.translateError("get", key, err)
	}
	size := int64(-1)
	switch {
	case resp.ContentRange != nil:
		size = storage.ParseContentRange(*resp.ContentRange)
	case resp.ContentLength != nil && offset == 0:
		size = *resp.ContentLength
	}
	etag := ""
	if resp.ETag != nil {
		etag = string(*resp.ETag)
	}
	if version != "" && etag != version {
		resp.Body.Close()
		return nil, storage.Changed("azure get", key, "its ETag is no longer "+version)
	}
	return &storage.Range{Body: &readCloser{s: s, key: key, rc: resp.Body}, Version: etag, Size: size}, nil
}

// readCloser keeps read errors in walnut's terms and free of credentials.
type readCloser struct {
	s   *Store
	key string
	rc  io.ReadCloser
}

func (r *readCloser) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = r.s.translateError("read", r.key, err)
	}
	return n, err
}

func (r *readCloser) Close() error {
	if err := r.rc.Close(); err != nil {
		return r.s.translateError("close", r.key, err)
	}
	return nil
}

func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	props, err := s.blob(key).GetProperties(ctx, nil)
	if err != nil {
		return storage.ObjectInfo{}, s.translateError("stat", key, err)
	}
	info := storage.ObjectInfo{Key: key}
	if props.ContentLength != nil {
		info.Size = *props.ContentLength
	}
	if props.LastModified != nil {
		info.ModTime = *props.LastModified
	}
	return info, nil
}

// List relies on the service's order: Azure lists blob names in ascending
// lexicographic order, page after page.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	pager := s.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Prefix: to.Ptr(s.cfg.Prefix + prefix),
	})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return s.translateError("list", prefix, err)
		}
		if page.Segment == nil {
			continue
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil {
				continue
			}
			info := storage.ObjectInfo{Key: strings.TrimPrefix(*item.Name, s.cfg.Prefix)}
			if p := item.Properties; p != nil {
				if p.ContentLength != nil {
					info.Size = *p.ContentLength
				}
				if p.LastModified != nil {
					info.ModTime = *p.LastModified
				}
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.blob(key).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: to.Ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return nil
	}
	return s.translateError("delete", key, err)
}

func (s *Store) Close() error {
	s.closeIdle()
	return nil
}
