package gcs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/walnut-pg/walnut/storage/internal/sizing"
)

// statusResumeIncomplete is the service's answer to a chunk that did not
// end the upload, or to a status query.
const statusResumeIncomplete = 308

// chunkQuantum: every chunk but the last must be a multiple of it.
const chunkQuantum = 256 << 10

// Put holds as little of the object as it can (package sizing): an object
// of known size is streamed in one upload request; one of unknown size is
// read up to 256 KiB into a buffer that grows as data arrives, and sent
// from there if it ends, else measured and streamed when its source
// rewinds, else sent by chunks (resumable).
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.put(ctx, key, r, size, false)
}

// Create is Put with ifGenerationMatch=0 on the upload, which GCS refuses
// with 412 when the name holds a live object: storage.ErrExists. It holds
// for every upload path, a resumable one included (the condition is
// checked again when the last chunk would make the object).
func (s *Store) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.put(ctx, key, r, size, true)
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64, create bool) error {
	op := "put"
	if create {
		op = "create"
	}
	rewind := sizing.Rewinder(r)
	src := sizeReader(ctx, r, size)
	fail := func(err error) error {
		if err == nil {
			return nil
		}
		if src.err != nil {
			// The source's own failure, reported as it is and never
			// Permanent: the retry decorator decides about it.
			return fmt.Errorf("gcs %s %s: %w", op, key, src.err)
		}
		return s.translateError(ctx, op, key, err)
	}
	if size < 0 {
		h, err := sizing.ReadHead(src, sizing.Small)
		if err != nil {
			return fail(err)
		}
		if !h.More {
			return fail(s.mediaUpload(ctx, key, h.Reader, h.Size, true, create))
		}
		if rewind == nil {
			return s.chunkedPut(ctx, op, key, io.MultiReader(h.Reader(), src), src, create)
		}
		if size, err = sizing.Measure(src, h, rewind, nil); err != nil {
			return fail(err)
		}
		src = sizeReader(ctx, r, size)
	}
	body := func() io.Reader { return src }
	return fail(s.mediaUpload(ctx, key, body, size, false, create))
}

// uploadQuery is the query of an upload of key; create makes it
// conditional on the name holding no live object.
func (s *Store) uploadQuery(uploadType, key string, create bool) url.Values {
	q := url.Values{"uploadType": {uploadType}, "name": {s.cfg.Prefix + key}}
	if create {
		q.Set("ifGenerationMatch", "0")
	}
	return q
}

// mediaUpload stores size bytes from body in one request, which the
// service turns into an object only once it has them all. A body from
// memory (again) is sent again after a failure another attempt may fix.
func (s *Store) mediaUpload(ctx context.Context, key string, body func() io.Reader, size int64, again, create bool) error {
	q := s.uploadQuery("media", key, create)
	u := s.base + "/upload/storage/v1/b/" + url.PathEscape(s.cfg.Bucket) + "/o?" + q.Encode()
	newReq := func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body())
		if err != nil {
			return nil, err
		}
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		return req, nil
	}
	if again {
		resp, err := s.do(ctx, newReq)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	req, err := newReq(ctx)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return readAPIError(resp)
	}
	resp.Body.Close()
	return nil
}

// chunkedPut uploads r with one resumable upload in chunks of ChunkSize,
// holding one chunk in memory. The object appears only when the last
// chunk, sent with the total size, is accepted: a failed or cancelled Put
// never sends it, and cancels the upload session. src is r's source, whose
// own failure is reported as such.
func (s *Store) chunkedPut(ctx context.Context, op, key string, r io.Reader, src *sourceReader, create bool) error {
	chunk := (s.cfg.ChunkSize + chunkQuantum - 1) / chunkQuantum * chunkQuantum
	buf := make([]byte, chunk)
	var (
		session   string
		offset    int64
		carry     [1]byte
		haveCarry bool
	)
	fail := func(err error) error {
		if session != "" {
			s.cancelUpload(ctx, session)
		}
		if src.err != nil {
			// The source's own failure, reported as it is and never
			// Permanent: the retry decorator decides about it.
			return fmt.Errorf("gcs %s %s: %w", op, key, src.err)
		}
		return s.translateError(ctx, op, key, err)
	}
	for {
		n := 0
		if haveCarry {
			buf[0] = carry[0]
			n = 1
		}
		m, err := io.ReadFull(r, buf[n:])
		n += m
		final := false
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			final = true
		case err != nil:
			return fail(err)
		default:
			// One byte more tells whether this chunk is the last, which
			// must carry the total size.
			k, err := io.ReadFull(r, carry[:])
			switch {
			case k == 1:
				haveCarry = true
			case err == io.EOF:
				final = true
			default:
				return fail(err)
			}
		}
		if session == "" {
			if session, err = s.startUpload(ctx, key, create); err != nil {
				return fail(err)
			}
		}
		if err := s.sendChunk(ctx, session, buf[:n], offset, final); err != nil {
			return fail(err)
		}
		offset += int64(n)
		if final {
			return nil
		}
	}
}

// startUpload opens a resumable upload session for key and returns its URI.
func (s *Store) startUpload(ctx context.Context, key string, create bool) (string, error) {
	name := s.cfg.Prefix + key
	meta, err := json.Marshal(map[string]string{"name": name, "contentType": "application/octet-stream"})
	if err != nil {
		return "", err
	}
	q := s.uploadQuery("resumable", key, create)
	u := s.base + "/upload/storage/v1/b/" + url.PathEscape(s.cfg.Bucket) + "/o?" + q.Encode()
	resp, err := s.do(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(meta))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		req.Header.Set("X-Upload-Content-Type", "application/octet-stream")
		return req, nil
	})
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return "", &apiError{code: resp.StatusCode, message: "upload session started without a Location"}
	}
	return loc.String(), nil
}

// sendChunk sends data, which starts at offset of the object, and ends
// the upload if final. A chunk that fails is retried, up to MaxAttempts
// times and ChunkRetryDeadline, from what the service says it kept.
func (s *Store) sendChunk(ctx context.Context, session string, data []byte, offset int64, final bool) error {
	end := offset + int64(len(data))
	persisted := offset
	askStatus := false
	attempt := func() (struct{}, error) {
		if askStatus {
			p, done, err := s.uploadStatus(ctx, session)
			if err != nil {
				return struct{}{}, s.chunkError(ctx, err)
			}
			askStatus = false
			if done {
				if final && (p == end || p < 0) {
					return struct{}{}, nil
				}
				return struct{}{}, backoff.Permanent(fmt.Errorf("upload session ended at %d bytes, at %d of %d", p, end, end))
			}
			if p < offset {
				return struct{}{}, backoff.Permanent(fmt.Errorf("upload session holds %d bytes, but %d were acknowledged", p, offset))
			}
			persisted = min(p, end)
		}
		p, done, err := s.putRange(ctx, session, data[persisted-offset:], persisted, end, final)
		if err != nil {
			askStatus = true
			return struct{}{}, s.chunkError(ctx, err)
		}
		switch {
		case done && final:
			return struct{}{}, nil
		case done:
			return struct{}{}, backoff.Permanent(errors.New("upload ended before its last chunk"))
		case p >= end && !final:
			return struct{}{}, nil
		case p < persisted:
			return struct{}{}, backoff.Permanent(fmt.Errorf("upload session holds %d bytes, but %d were acknowledged", p, persisted))
		}
		// The service kept only part of the chunk: send the rest.
		persisted = p
		return struct{}{}, fmt.Errorf("upload session kept %d of %d bytes", p, end)
	}
	opts := []backoff.RetryOption{
		backoff.WithBackOff(newBackOff()),
		backoff.WithMaxTries(uint(s.cfg.MaxAttempts)),
		backoff.WithMaxElapsedTime(s.cfg.ChunkRetryDeadline),
	}
	_, err := backoff.Retry(ctx, attempt, opts...)
	return err
}

// chunkError marks err Permanent unless another attempt may succeed.
func (s *Store) chunkError(ctx context.Context, err error) error {
	if !retryable(ctx, err) {
		return backoff.Permanent(err)
	}
	return err
}

// putRange sends data as bytes from-end-1 of the upload, with the total
// size if final. It returns how many bytes of the object the service holds
// (-1 if it did not say) and whether the object is complete.
func (s *Store) putRange(ctx context.Context, session string, data []byte, from, end int64, final bool) (int64, bool, error) {
	total := "*"
	if final {
		total = strconv.FormatInt(end, 10)
	}
	cr := fmt.Sprintf("bytes %d-%d/%s", from, end-1, total)
	if len(data) == 0 {
		cr = "bytes */" + total
	}
	return s.sessionPut(ctx, session, data, cr)
}

// uploadStatus asks the service how much of the upload it holds.
func (s *Store) uploadStatus(ctx context.Context, session string) (int64, bool, error) {
	return s.sessionPut(ctx, session, nil, "bytes */*")
}

func (s *Store) sessionPut(ctx context.Context, session string, data []byte, contentRange string) (int64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, session, bytes.NewReader(data))
	if err != nil {
		return 0, false, err
	}
	req.ContentLength = int64(len(data))
	req.Header.Set("Content-Range", contentRange)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, false, err
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		defer resp.Body.Close()
		// The object is there; its size is only checked where known.
		var attrs objectAttrs
		if json.NewDecoder(resp.Body).Decode(&attrs) != nil {
			return -1, true, nil
		}
		size, err := strconv.ParseInt(attrs.Size, 10, 64)
		if err != nil {
			return -1, true, nil
		}
		return size, true, nil
	case statusResumeIncomplete:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return persistedBytes(resp.Header.Get("Range")), false, nil
	}
	return 0, false, readAPIError(resp)
}

// persistedBytes reads a Range header of "bytes=0-N": N+1 bytes are held.
// No header means none.
func persistedBytes(h string) int64 {
	_, last, ok := strings.Cut(strings.TrimPrefix(h, "bytes="), "-")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(last, 10, 64)
	if err != nil {
		return 0
	}
	return n + 1
}

// cancelUpload ends a session that must not become an object. It is best
// effort: a session left behind expires in a week and never shows.
func (s *Store) cancelUpload(ctx context.Context, session string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, session, nil)
	if err != nil {
		return
	}
	if resp, err := s.client.Do(req); err == nil {
		resp.Body.Close()
	}
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
