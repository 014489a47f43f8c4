package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/internal/exactsize"
	"github.com/walnut-pg/walnut/storage/internal/sizing"
)

// abortTimeout bounds the clean-up of a failed multipart upload, which
// runs after the caller's context may be gone.
const abortTimeout = 30 * time.Second

// stepAttempts bounds the tries of each request of an upload whose bytes
// Put holds in memory (a single PUT's body, one part). storage.WithRetry
// retries a Put whole only when it can rewind the source; for a stream
// such as a backup partition, these are the only retries there are.
const stepAttempts = 3

// maxSinglePut is the largest object S3 takes in one PUT.
const maxSinglePut = 5 << 30

// Put stores an object of known size in one streamed PUT (up to 5 GiB),
// holding none of it: S3 makes it visible only once it has every byte.
// When the source can be rewound, it is read once in advance for its MD5,
// which S3 then checks the body against. One of unknown size is found out
// first (package sizing): a small one is sent from memory with its MD5; a
// larger one from a source that can be rewound is measured (and its MD5
// taken) and streamed like one of known size; a larger one from any other
// source (a backup partition) goes up as a multipart upload of fixed-size
// parts read one at a time through one buffer (WALNUT_S3_PART_SIZE),
// whatever its size, whose parts become an object only on
// CompleteMultipartUpload: that is not sent after a failure, and the
// upload is aborted so its parts do not linger.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.put(ctx, key, r, size, false)
}

// Create is Put with If-None-Match: *, which S3 (since 2024) and MinIO
// honour on PutObject: of two writers, the second is answered 412
// PreconditionFailed, storage.ErrExists, and stores nothing. It goes in
// one PUT only (up to 5 GiB), since walnut creates nothing but small
// objects: an object of unknown size is held up to a part
// (WALNUT_S3_PART_SIZE) unless its source can be rewound and measured,
// and one that does not fit is refused rather than sent in parts.
func (s *Store) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.put(ctx, key, r, size, true)
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64, create bool) error {
	op := "put"
	if create {
		op = "create"
	}
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	rewind := sizing.Rewinder(r)
	src := storage.ContextReader(ctx, r)
	attempts := stepAttempts
	if rewind != nil {
		// storage.WithRetry retries the whole Put; retrying here too
		// would multiply the time spent on a dead server.
		attempts = 1
	}
	u := &upload{s: s, ctx: ctx, key: key, name: name, attempts: attempts, op: op, create: create}
	var md5sum string // of a source read to its end in advance
	if size < 0 {
		h, err := sizing.ReadHead(src, sizing.Small)
		if err != nil {
			return fmt.Errorf("%s %s: read source: %w", op, key, err)
		}
		if !h.More {
			return u.single(h.Reader, h.Size, base64.StdEncoding.EncodeToString(h.MD5()))
		}
		if rewind == nil {
			buf := make([]byte, s.cfg.partSize)
			n := h.CopyTo(buf)
			m, err := io.ReadFull(src, buf[n:])
			n += m
			switch {
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				return u.singleBytes(buf[:n])
			case err != nil:
				return fmt.Errorf("%s %s: read source: %w", op, key, err)
			}
			return u.multipart(buf, src, -1)
		}
		sum := s.md5Source()
		if size, err = sizing.Measure(src, h, rewind, sum); err != nil {
			return fmt.Errorf("%s %s: %w", op, key, err)
		}
		if sum != nil {
			md5sum = base64.StdEncoding.EncodeToString(sum.Sum(nil))
		}
	}
	switch {
	case size <= sizing.Small:
		// Small enough to hold, and so to send with its MD5 and retry.
		// One byte more than announced shows a source that is longer.
		buf := make([]byte, size+1)
		n, err := io.ReadFull(src, buf)
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			if int64(n) != size {
				return fmt.Errorf("%s %s: read %d bytes, want %d", op, key, n, size)
			}
			return u.singleBytes(buf[:n])
		case err != nil:
			return fmt.Errorf("%s %s: read source: %w", op, key, err)
		}
		return fmt.Errorf("%s %s: source is longer than the %d bytes announced", op, key, size)
	case size <= maxSinglePut || create:
		if rewind == nil {
			return u.stream(exactsize.Reader(src, size), size, "")
		}
		if md5sum == "" {
			if sum := s.md5Source(); sum != nil {
				if _, err := sizing.Measure(src, &sizing.Head{}, rewind, sum); err != nil {
					return fmt.Errorf("%s %s: %w", op, key, err)
				}
				md5sum = base64.StdEncoding.EncodeToString(sum.Sum(nil))
			}
		}
		err := u.stream(exactsize.Reader(src, size), size, md5sum)
		if errors.Is(err, errBadDigest) {
			// The source gave other bytes the second time (encryption
			// draws a new session key each time): no digest read in
			// advance can vouch for it, in this process at least.
			s.unrepeatable.Store(true)
			s.log.Debug("source not the same when read again; storing it without Content-MD5", "key", key)
			if err := rewind(); err != nil {
				return fmt.Errorf("%s %s: %w", op, key, &sizing.RewindError{Err: err})
			}
			err = u.stream(exactsize.Reader(src, size), size, "")
		}
		return err
	}
	buf := make([]byte, s.cfg.partSize)
	if _, err := io.ReadFull(src, buf); err != nil {
		return fmt.Errorf("%s %s: read source: %w", op, key, err)
	}
	return u.multipart(buf, src, size)
}

// upload is one Put's requests.
type upload struct {
	s        *Store
	ctx      context.Context
	key      string
	name     string
	attempts int
	op       string // "put" or "create", in errors
	create   bool   // only if the key holds no object
}

// options are the PutObject options of this upload.
func (u *upload) options() minio.PutObjectOptions {
	opts := u.s.putOptions()
	if u.create {
		opts.SetMatchETagExcept("*")
	}
	return opts
}

// translateError maps a failed request of this upload; a Create's
// precondition failing is ErrExists. S3 answers 409
// ConditionalRequestConflict while another conditional write to the key
// is under way: that one is left to be retried, and meets 412 then.
func (u *upload) translateError(err error) error {
	var resp minio.ErrorResponse
	if u.create && errors.As(err, &resp) && (resp.Code == "PreconditionFailed" || resp.StatusCode == 412) {
		return storage.Exists(u.op, u.key)
	}
	return u.s.translateError(u.op, u.key, err)
}

// retry runs step until it succeeds, fails for good, or the attempts are
// spent, waiting about 0.5s, then 1s, between tries. step returns
// translated errors.
func (u *upload) retry(step func(attempt int) error) error {
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := step(attempt)
		if err == nil || attempt >= u.attempts || storage.IsPermanent(err) || u.ctx.Err() != nil {
			return err
		}
		d := wait/2 + rand.N(wait)
		u.s.log.Warn("s3 upload request failed; retrying",
			"key", u.key, "attempt", attempt, "max_attempts", u.attempts, "wait", d, "error", err)
		select {
		case <-u.ctx.Done():
			return err
		case <-time.After(d):
		}
		wait *= 2
	}
}

func (s *Store) putOptions() minio.PutObjectOptions {
	return minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		ServerSideEncryption: s.cfg.sse,
		StorageClass:         s.cfg.storageClass,
		// Content-MD5 lets the server check every byte it stores, costs
		// less than signing the payload with SHA-256, and is what buckets
		// with Object Lock require.
		DisableContentSha256: true,
	}
}

func contentMD5(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (u *upload) singleBytes(data []byte) error {
	return u.single(func() io.Reader { return bytes.NewReader(data) }, int64(len(data)), contentMD5(data))
}

// single sends the object body makes, size bytes with the given MD5, in
// one PUT, retried from a new body.
func (u *upload) single(body func() io.Reader, size int64, md5 string) error {
	s := u.s
	return u.retry(func(int) error {
		_, err := s.core.PutObject(u.ctx, s.cfg.bucket, u.name, body(), size, md5, "", u.options())
		if err != nil {
			return u.translateError(err)
		}
		s.bucketSeen.Store(true)
		return nil
	})
}

// errBadDigest is S3 refusing a body that does not match its Content-MD5.
var errBadDigest = errors.New("body does not match its Content-MD5")

// md5Source returns a hash for the MD5 of a rewindable source read in
// advance, or nil once a source has been seen to give other bytes when
// read again.
func (s *Store) md5Source() hash.Hash {
	if s.unrepeatable.Load() {
		return nil
	}
	return md5.New()
}

// stream sends body, size bytes read once, in one PUT. With the MD5 of the
// body (read in advance from a source that can be read again), S3 checks
// every byte it stores against it and the body goes unsigned; without one,
// the body is signed chunk by chunk on plain HTTP (S3 checks every chunk)
// and protected by TLS on HTTPS. A body that does not match md5 is
// errBadDigest.
func (u *upload) stream(body io.Reader, size int64, md5 string) error {
	s := u.s
	opts := u.options()
	opts.DisableContentSha256 = md5 != ""
	// minio-go would rewind a Seeker and close a Closer: hide both.
	_, err := s.core.PutObject(u.ctx, s.cfg.bucket, u.name, struct{ io.Reader }{body}, size, md5, "", opts)
	var resp minio.ErrorResponse
	if md5 != "" && errors.As(err, &resp) && resp.Code == "BadDigest" {
		return errBadDigest
	}
	if err != nil {
		return u.translateError(err)
	}
	s.bucketSeen.Store(true)
	return nil
}

// multipart uploads buf, which is one full part, and then the rest of
// src, part by part through the same buffer.
func (u *upload) multipart(buf []byte, src io.Reader, size int64) (err error) {
	s, ctx, key := u.s, u.ctx, u.key
	if u.create {
		// buf is full: the object fits in it only if the source ends here.
		var one [1]byte
		n, err := io.ReadFull(src, one[:])
		switch {
		case n == 0 && err == io.EOF:
			return u.singleBytes(buf)
		case n == 0:
			return fmt.Errorf("create %s: read source: %w", key, err)
		}
		return storage.Permanent(fmt.Errorf("create %s: an object of unknown size over %d bytes cannot be created in one PUT", key, len(buf)))
	}
	opts := s.putOptions()
	var uploadID string
	err = u.retry(func(int) error {
		var err error
		uploadID, err = s.core.NewMultipartUpload(ctx, s.cfg.bucket, u.name, opts)
		return s.translateError("put", key, err)
	})
	if err != nil {
		return err
	}
	s.bucketSeen.Store(true)
	defer func() {
		if err != nil {
			err = s.abort(ctx, key, u.name, uploadID, err)
		}
	}()
	var (
		parts []minio.CompletePart
		total int64
		n     = len(buf)
	)
	for num := 1; n > 0; num++ {
		if num > maxParts {
			return storage.Permanent(fmt.Errorf("put %s: object exceeds %d parts of %d bytes: raise %s", key, maxParts, s.cfg.partSize, envPartSize))
		}
		part := buf[:n]
		md5 := contentMD5(part)
		var etag string
		err := u.retry(func(int) error {
			p, err := s.core.PutObjectPart(ctx, s.cfg.bucket, u.name, uploadID, num, bytes.NewReader(part), int64(len(part)),
				minio.PutObjectPartOptions{Md5Base64: md5, DisableContentSha256: true})
			if err != nil {
				return s.translateError("put", key, fmt.Errorf("part %d: %w", num, err))
			}
			etag = p.ETag
			return nil
		})
		if err != nil {
			return err
		}
		parts = append(parts, minio.CompletePart{PartNumber: num, ETag: etag})
		total += int64(n)
		if n < len(buf) {
			break // the short read before was the end
		}
		var rerr error
		n, rerr = io.ReadFull(src, buf)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return fmt.Errorf("put %s: read source: %w", key, rerr)
		}
		if size >= 0 && total+int64(n) > size {
			return fmt.Errorf("put %s: source is longer than the %d bytes announced", key, size)
		}
	}
	if size >= 0 && total != size {
		return fmt.Errorf("put %s: read %d bytes, want %d", key, total, size)
	}
	// Completing is what makes the object visible: never for a caller
	// that has given up.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return u.retry(func(attempt int) error {
		_, err := s.core.CompleteMultipartUpload(ctx, s.cfg.bucket, u.name, uploadID, parts, opts)
		var resp minio.ErrorResponse
		if attempt > 1 && errors.As(err, &resp) && resp.Code == "NoSuchUpload" {
			// An earlier try completed the upload and its answer was
			// lost: the object is there if it has our size.
			info, serr := s.client.StatObject(ctx, s.cfg.bucket, u.name, minio.StatObjectOptions{})
			if serr == nil && info.Size == total {
				return nil
			}
		}
		return s.translateError("put", key, err)
	})
}

// abort removes the parts of a failed upload. Its own failure is added to
// cause, since parts left behind cost money until a lifecycle rule
// (AbortIncompleteMultipartUpload) removes them.
func (s *Store) abort(ctx context.Context, key, name, uploadID string, cause error) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	err := s.core.AbortMultipartUpload(actx, s.cfg.bucket, name, uploadID)
	if err == nil {
		return cause
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && resp.Code == "NoSuchUpload" {
		return cause
	}
	// %v: how the abort failed must not decide whether the Put is retried.
	return fmt.Errorf("%w (and the incomplete upload could not be aborted: %v)", cause, s.translateError("abort upload of", key, err))
}
