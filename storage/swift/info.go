package swift

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
)

// limits are what the cluster allows, read from its /info.
type limits struct {
	maxFile     int64 // the largest object stored in one piece
	segment     int64 // the size of a large object's segments
	maxSegments int
	slo         bool
}

// Swift's defaults, for a cluster that keeps its /info to itself.
const (
	defaultMaxFileSize = 5<<30 + 2
	defaultMaxSegments = 1000
)

type clusterInfo struct {
	Swift struct {
		MaxFileSize int64 `json:"max_file_size"`
	} `json:"swift"`
	SLO *sloInfo `json:"slo"`
}

type sloInfo struct {
	MaxManifestSegments int   `json:"max_manifest_segments"`
	MinSegmentSize      int64 `json:"min_segment_size"`
}

// clusterLimits asks the cluster once per store; a failure is not cached.
func (s *Store) clusterLimits(ctx context.Context) (limits, error) {
	s.limitsMu.Lock()
	defer s.limitsMu.Unlock()
	if s.limits != nil {
		return *s.limits, nil
	}
	info, err := s.queryInfo(ctx)
	if err != nil {
		return limits{}, err
	}
	l := limits{maxFile: info.Swift.MaxFileSize, maxSegments: defaultMaxSegments, slo: info.SLO != nil}
	if l.maxFile <= 0 {
		l.maxFile = defaultMaxFileSize
	}
	l.segment = l.maxFile
	if s.cfg.segmentSize > 0 {
		l.segment = min(s.cfg.segmentSize, l.maxFile)
	}
	if info.SLO != nil {
		if info.SLO.MaxManifestSegments > 0 {
			l.maxSegments = info.SLO.MaxManifestSegments
		}
		l.segment = max(l.segment, info.SLO.MinSegmentSize)
	}
	s.limits = &l
	return l, nil
}

// queryInfo reads /info beside the storage URL's /v1/<account>. A cluster
// that does not expose it is taken to have Swift's defaults, static large
// objects included.
func (s *Store) queryInfo(ctx context.Context) (clusterInfo, error) {
	var info clusterInfo
	storageURL, err := s.conn.GetStorageUrl(ctx)
	if err != nil {
		return info, s.authError(ctx, err)
	}
	u, err := url.Parse(storageURL)
	if err != nil {
		return info, fmt.Errorf("swift storage URL %q: %w", redactURL(storageURL), err)
	}
	u.Path, u.RawPath = path.Join(u.Path, "..", "..", "info"), ""
	ctx, cancel := context.WithTimeout(ctx, responseTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return info, err
	}
	resp, err := (&http.Client{Transport: s.transport}).Do(req)
	if err != nil {
		return info, s.errorf(err, "swift: read cluster limits: %v", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		// A broken /info is no reason to stop: Swift's defaults are safe.
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&info); err == nil {
			return info, nil
		}
	case resp.StatusCode >= 500:
		return info, s.errorf(nil, "swift: read cluster limits from %s: %s", redactURL(u.String()), resp.Status)
	}
	return clusterInfo{SLO: &sloInfo{}}, nil
}
