// Package swift is the swift:// backend: OpenStack Swift through
// github.com/ncw/swift/v2, configured by WAL-E's SWIFT_* variables or
// OpenStack's OS_* ones. Objects larger than the cluster allows in one
// piece are stored as static large objects.
package swift

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ncw/swift/v2"
	"github.com/walnut-pg/walnut/storage"
)

// Timeouts that keep a stalled server from hanging walnut. ncw/swift
// applies responseTimeout until a response's headers arrive (and for the
// log-in) and idleTimeout to each wait for body data in either direction.
const (
	dialTimeout     = 10 * time.Second
	responseTimeout = 30 * time.Second
	idleTimeout     = 60 * time.Second
)

// Store keeps objects in one Swift container under a prefix.
type Store struct {
	cfg       config
	conn      *swift.Connection
	transport *http.Transport
	container string
	prefix    string

	authMu        sync.Mutex
	containerSeen atomic.Bool // a 404 on an object means the object is missing

	limitsMu sync.Mutex
	limits   *limits // the cluster's, once asked
}

var (
	_ storage.Store       = (*Store)(nil)
	_ storage.RangeReader = (*Store)(nil)
	_ storage.Creator     = (*Store)(nil)
)

// Open returns a store for u, swift://container/path. getenv supplies the
// credentials. Open does not contact Swift: the first call logs in.
func Open(ctx context.Context, u *url.URL, getenv func(string) string) (storage.Store, error) {
	return open(u, getenv)
}

func open(u *url.URL, getenv func(string) string) (*Store, error) {
	cfg, err := parseConfig(u, getenv)
	if err != nil {
		return nil, storage.Permanent(err)
	}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   dialTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
	}
	conn := &swift.Connection{
		AuthUrl:        cfg.authURL,
		UserName:       cfg.user,
		UserId:         cfg.userID,
		ApiKey:         cfg.password,
		Tenant:         cfg.tenant,
		TenantId:       cfg.tenantID,
		Region:         cfg.region,
		EndpointType:   cfg.endpointType,
		AuthVersion:    cfg.authVersion,
		Domain:         cfg.userDomain,
		DomainId:       cfg.userDomainID,
		TenantDomain:   cfg.projectDomain,
		TenantDomainId: cfg.projectDomainID,
		UserAgent:      "walnut",
		// One more try is what lets ncw/swift log in again when a token
		// expires; everything else is storage.WithRetry's business.
		Retries:        1,
		ConnectTimeout: responseTimeout,
		Timeout:        idleTimeout,
		Transport:      t,
	}
	return &Store{
		cfg:       cfg,
		conn:      conn,
		transport: t,
		container: cfg.container,
		prefix:    cfg.prefix,
	}, nil
}

// login authenticates unless a valid token is at hand, so that a log-in
// failure is told apart from a token refused later.
func (s *Store) login(ctx context.Context) error {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if s.conn.Authenticated() {
		return nil
	}
	if err := s.conn.Authenticate(ctx); err != nil {
		return s.authError(ctx, err)
	}
	return nil
}

// begin checks what every call needs before it talks to Swift, and returns
// the object name of key.
func (s *Store) begin(ctx context.Context, op, key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", s.errorf(err, "%s %s: %v", op, key, err)
	}
	if err := s.login(ctx); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rng, err := s.GetRange(ctx, key, 0, "")
	if err != nil {
		return nil, err
	}
	return rng.Body, nil
}

// GetRange pins the version by ETag (If-Match), which for a large object
// is the manifest's own ETag: another manifest or another plain object
// has another, and Swift answers 412.
func (s *Store) GetRange(ctx context.Context, key string, offset int64, version string) (*storage.Range, error) {
	name, err := s.begin(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	h := swift.Headers{}
	if offset > 0 {
		h["Range"] = fmt.Sprintf("bytes=%d-", offset)
	}
	if version != "" {
		h["If-Match"] = `"` + version + `"`
	}
	// checkHash makes Close fail on a whole body whose MD5 is not the
	// ETag; Swift has no such ETag for a large object, whose segments were
	// checked when its manifest was stored, nor is there one for a range.
	f, headers, err := s.conn.ObjectOpen(ctx, s.container, name, offset == 0, h)
	if err != nil {
		switch status(err) {
		case http.StatusNotFound:
			return nil, s.notFound(ctx, "get", key, err)
		case http.StatusPreconditionFailed:
			if version != "" {
				return nil, storage.Changed("get", key, "its ETag is no longer "+version)
			}
		}
		return nil, s.translate(ctx, "get", key, err)
	}
	etag := strings.Trim(headers["Etag"], `"`)
	size := int64(-1)
	if offset > 0 {
		size = storage.ParseContentRange(headers["Content-Range"])
	} else if n, err := strconv.ParseInt(headers["Content-Length"], 10, 64); err == nil {
		size = n
	}
	if version != "" && etag != version {
		f.Close()
		return nil, storage.Changed("get", key, "its ETag is no longer "+version)
	}
	return &storage.Range{Body: &reader{s: s, ctx: ctx, key: key, f: f}, Version: etag, Size: size}, nil
}

// reader puts walnut's words on the errors of a body being read.
type reader struct {
	s   *Store
	ctx context.Context
	key string
	f   *swift.ObjectOpenFile
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	if err != nil && err != io.EOF {
		err = r.s.translate(r.ctx, "read", r.key, err)
	}
	return n, err
}

func (r *reader) Close() error {
	if err := r.f.Close(); err != nil {
		return r.s.translate(r.ctx, "read", r.key, err)
	}
	return nil
}

func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	name, err := s.begin(ctx, "stat", key)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	obj, _, err := s.conn.Object(ctx, s.container, name)
	if err != nil {
		if status(err) == http.StatusNotFound {
			return storage.ObjectInfo{}, s.notFound(ctx, "stat", key, err)
		}
		return storage.ObjectInfo{}, s.translate(ctx, "stat", key, err)
	}
	return storage.ObjectInfo{Key: key, Size: obj.Bytes, ModTime: obj.LastModified}, nil
}

// listPage is how many names one listing request asks for: every Swift
// (and Ceph RGW's Swift API) returns at least this many per page.
const listPage = 1000

func (s *Store) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return s.errorf(err, "list %s: %v", prefix, err)
	}
	if err := s.login(ctx); err != nil {
		return err
	}
	opts := &swift.ObjectsOpts{Prefix: s.prefix + prefix, Limit: listPage}
	for {
		objs, err := s.conn.Objects(ctx, s.container, opts)
		if err != nil {
			return s.translate(ctx, "list", prefix, err)
		}
		s.containerSeen.Store(true)
		for _, o := range objs {
			key := strings.TrimPrefix(o.Name, s.prefix)
			if strings.HasPrefix(key, segmentsDir) {
				continue
			}
			if err := fn(storage.ObjectInfo{Key: key, Size: o.Bytes, ModTime: o.LastModified}); err != nil {
				return err
			}
		}
		if len(objs) < listPage {
			return nil
		}
		opts.Marker = objs[len(objs)-1].Name
	}
}

// Delete removes a large object's manifest before its segments, so that
// no reader ever sees an object whose segments are half gone.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.begin(ctx, "delete", key)
	if err != nil {
		return err
	}
	segments, err := s.segmentsOf(ctx, name)
	if err != nil {
		if status(err) == http.StatusNotFound {
			if err := s.notFound(ctx, "delete", key, err); !isNotFound(err) {
				return err
			}
			return nil
		}
		return s.translate(ctx, "delete", key, err)
	}
	if err := s.conn.ObjectDelete(ctx, s.container, name); err != nil && status(err) != http.StatusNotFound {
		return s.translate(ctx, "delete", key, err)
	}
	s.deleteSegments(ctx, segments)
	return nil
}

func (s *Store) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}
