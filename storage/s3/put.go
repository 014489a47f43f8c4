package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/walnut-pg/walnut/storage"
)

// abortTimeout bounds the clean-up of a failed multipart upload, which
// runs after the caller's context may be gone.
const abortTimeout = 30 * time.Second

// Put reads at most one part into memory. An object that fits is stored
// with one PUT; a larger one, or one of unknown size that turns out
// larger, as a multipart upload of fixed-size parts read one at a time,
// so memory stays at one part (WALNUT_S3_PART_SIZE) whatever the size of
// the object. Either way S3 makes the object visible only once it is
// whole: a single PUT is atomic, and parts become an object only on
// CompleteMultipartUpload, which is not sent after any failure; the
// upload is aborted instead so its parts do not linger.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	bufSize := s.cfg.partSize
	if size >= 0 && size < bufSize {
		// One byte more than announced shows a source that is longer.
		bufSize = size + 1
	}
	buf := make([]byte, bufSize)
	src := storage.ContextReader(ctx, r)
	n, err := io.ReadFull(src, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		if size >= 0 && int64(n) != size {
			return fmt.Errorf("put %s: read %d bytes, want %d", key, n, size)
		}
		return s.putSingle(ctx, key, name, buf[:n])
	case err != nil:
		return fmt.Errorf("put %s: read source: %w", key, err)
	case size >= 0 && size < s.cfg.partSize:
		return fmt.Errorf("put %s: source is longer than the %d bytes announced", key, size)
	}
	return s.putMultipart(ctx, key, name, buf, src, size)
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

func (s *Store) putSingle(ctx context.Context, key, name string, data []byte) error {
	_, err := s.core.PutObject(ctx, s.cfg.bucket, name, bytes.NewReader(data), int64(len(data)), contentMD5(data), "", s.putOptions())
	if err != nil {
		return s.translateError("put", key, err)
	}
	s.bucketSeen.Store(true)
	return nil
}

// putMultipart uploads first, which is one full part, and then the rest
// of src, part by part through the same buffer.
func (s *Store) putMultipart(ctx context.Context, key, name string, buf []byte, src io.Reader, size int64) (err error) {
	opts := s.putOptions()
	uploadID, err := s.core.NewMultipartUpload(ctx, s.cfg.bucket, name, opts)
	if err != nil {
		return s.translateError("put", key, err)
	}
	s.bucketSeen.Store(true)
	defer func() {
		if err != nil {
			err = s.abort(ctx, key, name, uploadID, err)
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
		p, err := s.core.PutObjectPart(ctx, s.cfg.bucket, name, uploadID, num, bytes.NewReader(part), int64(n),
			minio.PutObjectPartOptions{Md5Base64: contentMD5(part), DisableContentSha256: true})
		if err != nil {
			return s.translateError("put", key, fmt.Errorf("part %d: %w", num, err))
		}
		parts = append(parts, minio.CompletePart{PartNumber: num, ETag: p.ETag})
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
	if _, err := s.core.CompleteMultipartUpload(ctx, s.cfg.bucket, name, uploadID, parts, opts); err != nil {
		return s.translateError("put", key, err)
	}
	return nil
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
