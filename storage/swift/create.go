package swift

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ncw/swift/v2"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/internal/sizing"
)

// createSettle is how long Create waits after its PUT before it reads the
// object back: far longer than a small PUT takes to land once it has
// passed the server's check.
var createSettle = time.Second

// Create stores an object in one PUT with If-None-Match: *, which Swift
// answers 412 when the name holds an object: storage.ErrExists.
//
// Swift's check is weaker than S3's, Azure's or GCS's: each object server
// looks for the object when a PUT arrives, before its body, so two PUTs
// that arrive together both pass and are both stored, and the one with
// the later timestamp (taken by the proxy as the request arrived) is the
// object from then on. So Create waits createSettle (or three times as
// long as its own PUT took, if longer) after its PUT, for a racing PUT
// that passed the check to land, and then reads the object's
// ETag back: if it is not its own bytes' MD5, another writer won, and it
// reports ErrExists. Two writers can then both succeed only when one's
// PUT lands more than createSettle after the other's read, which a
// stalled client can do and nothing in Swift's API prevents; and a read
// served by a replica that missed the newest write can still mislead it.
// The wait is paid once per archive, by the first wal-push or
// backup-push.
//
// One PUT only (the cluster's max_file_size): an object of unknown size
// from a source that cannot be rewound is held up to 20 MiB, and a larger
// one is refused rather than made a large object, whose manifest Swift
// does not check.
func (s *Store) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	name, err := s.begin(ctx, "create", key)
	if err != nil {
		return err
	}
	lim, err := s.clusterLimits(ctx)
	if err != nil {
		return s.errorf(err, "create %s: %v", key, err)
	}
	src := storage.ContextReader(ctx, r)
	var body io.Reader
	if size < 0 {
		rewind := sizing.Rewinder(r)
		limit := min(headLimit, lim.maxFile)
		if rewind != nil {
			limit = min(sizing.Small, lim.maxFile)
		}
		h, err := sizing.ReadHead(src, limit)
		if err != nil {
			return s.readError(ctx, key, err)
		}
		switch {
		case !h.More:
			body, size = h.Reader(), h.Size
		case rewind == nil:
			return storage.Permanent(s.errorf(nil, "create %s: an object of unknown size over %d bytes cannot be created in one PUT", key, limit))
		default:
			if size, err = sizing.Measure(src, h, rewind, nil); err != nil {
				return s.readError(ctx, key, err)
			}
		}
	}
	if size > lim.maxFile {
		return storage.Permanent(s.errorf(nil, "create %s: %d bytes do not fit in one PUT (max_file_size %d)", key, size, lim.maxFile))
	}
	if body == nil {
		body = &exactReader{r: src, left: size, size: size}
	}
	sum := md5.New()
	h := swift.Headers{"Content-Length": strconv.FormatInt(size, 10), "If-None-Match": "*"}
	start := time.Now()
	if _, err := s.conn.ObjectPut(ctx, s.container, name, io.TeeReader(body, sum), true, "", contentType, h); err != nil {
		switch {
		case status(err) == http.StatusPreconditionFailed:
			// Swift closes the connection of a PUT it refused before its
			// body, without saying so: the next request must not get it.
			s.transport.CloseIdleConnections()
			return storage.Exists("swift create", key)
		case ctx.Err() == nil && status(err) == http.StatusNotFound:
			return s.containerMissing("create", key, err)
		}
		return s.translate(ctx, "create", key, err)
	}
	s.containerSeen.Store(true)
	// A racing PUT on a slow cluster takes about as long as ours did.
	select {
	case <-time.After(max(createSettle, 3*time.Since(start))):
	case <-ctx.Done():
		return s.errorf(ctx.Err(), "create %s: %v", key, ctx.Err())
	}
	obj, _, err := s.conn.Object(ctx, s.container, name)
	if err != nil {
		if status(err) == http.StatusNotFound {
			// Deleted already, whoever's it was: another attempt tells.
			return s.errorf(err, "create %s: gone when read back after the PUT", key)
		}
		return s.translate(ctx, "create", key, err)
	}
	if obj.Hash != hex.EncodeToString(sum.Sum(nil)) {
		return storage.Exists("swift create", key)
	}
	return nil
}
