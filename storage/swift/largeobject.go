package swift

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ncw/swift/v2"
	"github.com/walnut-pg/walnut/storage"
)

// manifestEntry is one segment in a static large object's manifest, in
// the form Swift takes on PUT and returns with format=raw.
type manifestEntry struct {
	Path string `json:"path"` // "/container/object"
	ETag string `json:"etag"`
	Size int64  `json:"size_bytes"`
}

// putLarge streams src into segments of lim.segment bytes (size bytes in
// all, or until src ends when size < 0) and then stores the manifest.
// Memory stays at a small read buffer whatever the size: each segment is
// its own streaming PUT.
func (s *Store) putLarge(ctx context.Context, key, name string, src io.Reader, size int64, lim limits) (err error) {
	if !lim.slo {
		return storage.Permanent(s.errorf(nil, "put %s: the object is larger than the %d bytes Swift stores in one piece, and the cluster does not offer static large objects (the slo middleware)", key, lim.segment))
	}
	segSize := lim.segment
	if size >= 0 && ceilDiv(size, segSize) > int64(lim.maxSegments) {
		segSize = ceilDiv(size, int64(lim.maxSegments))
		if segSize > lim.maxFile {
			return storage.Permanent(s.errorf(nil, "put %s: %d bytes is more than Swift's %d segments of at most %d bytes", key, size, lim.maxSegments, lim.maxFile))
		}
	}
	dir := s.prefix + segmentsDir + key + "/" + uploadID() + "/"
	var segments []manifestEntry
	// A segment whose PUT failed on our side (cancelled, cut) may still
	// have been stored by Swift: it is deleted with the others.
	var inflight string
	defer func() {
		if err != nil {
			names := s.segmentNames(segments)
			if inflight != "" {
				names = append(names, inflight)
			}
			s.deleteSegments(ctx, names)
		}
	}()
	br := bufio.NewReaderSize(src, 64<<10)
	var done int64
	for n := 1; ; n++ {
		if size >= 0 && done == size {
			break
		}
		if size < 0 {
			if _, err := br.Peek(1); err == io.EOF {
				break
			} else if err != nil {
				return s.readError(ctx, key, err)
			}
		}
		if n > lim.maxSegments {
			return storage.Permanent(s.errorf(nil, "put %s: the object is larger than Swift's %d segments of %d bytes; raise %s", key, lim.maxSegments, segSize, SegmentSizeVar))
		}
		length := int64(-1)
		if size >= 0 {
			length = min(segSize, size-done)
		}
		inflight = dir + fmt.Sprintf("%08d", n)
		seg, err := s.putSegment(ctx, key, inflight, br, length, segSize)
		if err != nil {
			return err
		}
		inflight = ""
		segments = append(segments, seg)
		done += seg.Size
	}
	if size >= 0 {
		if _, err := br.Peek(1); err != io.EOF {
			if err == nil {
				err = fmt.Errorf("source has more than the %d bytes announced", size)
			}
			return s.readError(ctx, key, err)
		}
	}
	return s.putManifest(ctx, key, name, segments)
}

// putSegment stores length bytes of r as segment name, or up to segSize
// bytes when length < 0. A segment of known length is sent with its
// Content-Length, so a source that ends early leaves no segment behind.
func (s *Store) putSegment(ctx context.Context, key, name string, r io.Reader, length, segSize int64) (manifestEntry, error) {
	h := swift.Headers{}
	body := &countingReader{r: io.LimitReader(r, segSize)}
	if length >= 0 {
		body.r = io.LimitReader(r, length)
		h["Content-Length"] = strconv.FormatInt(length, 10)
	}
	// checkHash: ncw/swift checks the MD5 of what it sent against the
	// ETag Swift stored; the manifest then makes Swift check every
	// segment's ETag again before the object appears.
	got, err := s.conn.ObjectPut(ctx, s.container, name, body, true, "", contentType, h)
	if err != nil {
		if ctx.Err() == nil && body.err != nil {
			return manifestEntry{}, s.readError(ctx, key, body.err)
		}
		return manifestEntry{}, s.putError(ctx, key, err)
	}
	return manifestEntry{Path: "/" + s.container + "/" + name, ETag: got["Etag"], Size: body.n}, nil
}

type countingReader struct {
	r   io.Reader
	n   int64
	err error // the first failure other than EOF
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// putManifest makes the large object visible, then removes the segments
// of the object it replaced.
func (s *Store) putManifest(ctx context.Context, key, name string, segments []manifestEntry) error {
	old, err := s.segmentsOf(ctx, name)
	if err != nil && status(err) != http.StatusNotFound {
		return s.translate(ctx, "put", key, err)
	}
	body, err := json.Marshal(segments)
	if err != nil {
		return err
	}
	_, _, err = s.call(ctx, swift.RequestOpts{
		Container:  s.container,
		ObjectName: name,
		Operation:  http.MethodPut,
		Parameters: url.Values{"multipart-manifest": {"put"}},
		Headers:    swift.Headers{"Content-Length": strconv.Itoa(len(body)), "Content-Type": contentType},
		Body:       bytes.NewReader(body),
		NoResponse: true,
	})
	if err != nil {
		return s.putError(ctx, key, err)
	}
	s.containerSeen.Store(true)
	s.deleteSegments(ctx, old)
	return nil
}

// segmentsOf returns the names of the segments of object name that this
// store wrote, if name is a static large object. A 404 comes back as the
// error.
func (s *Store) segmentsOf(ctx context.Context, name string) ([]string, error) {
	_, h, err := s.conn.Object(ctx, s.container, name)
	if err != nil {
		return nil, err
	}
	if !h.IsLargeObjectSLO() {
		return nil, nil
	}
	resp, _, err := s.call(ctx, swift.RequestOpts{
		Container:  s.container,
		ObjectName: name,
		Operation:  http.MethodGet,
		Parameters: url.Values{"multipart-manifest": {"get"}, "format": {"raw"}},
	})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var segments []manifestEntry
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&segments); err != nil {
		return nil, fmt.Errorf("read the manifest of large object %s: %w", name, err)
	}
	return s.segmentNames(segments), nil
}

// segmentNames returns the object names of the segments that lie in this
// store's segment area: a manifest written by someone else may point
// anywhere, and what it points to is not ours to delete.
func (s *Store) segmentNames(segments []manifestEntry) []string {
	var names []string
	for _, seg := range segments {
		name, ok := strings.CutPrefix(strings.TrimPrefix(seg.Path, "/"), s.container+"/")
		if ok && strings.HasPrefix(name, s.prefix+segmentsDir) {
			names = append(names, name)
		}
	}
	return names
}

// deleteSegments removes segments no manifest points to any more, even
// when ctx was cancelled (a failed Put cleans up after itself). It is best
// effort: a segment left behind costs space but is never listed.
func (s *Store) deleteSegments(ctx context.Context, names []string) {
	if len(names) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, name := range names {
		s.conn.ObjectDelete(ctx, s.container, name)
	}
}

// call runs a request ncw/swift has no method for against the storage URL.
func (s *Store) call(ctx context.Context, opts swift.RequestOpts) (*http.Response, swift.Headers, error) {
	storageURL, err := s.conn.GetStorageUrl(ctx)
	if err != nil {
		return nil, nil, err
	}
	// ncw/swift calls OnReAuth with the connection's lock held, after a
	// new log-in, so the field is current and safe to read.
	opts.OnReAuth = func() (string, error) { return s.conn.StorageUrl, nil }
	return s.conn.Call(ctx, storageURL, opts)
}

func uploadID() string {
	return fmt.Sprintf("%x-%08x", time.Now().UnixNano(), rand.Uint32())
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
