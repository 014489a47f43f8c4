package azure

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/internal/exactsize"
	"github.com/walnut-pg/walnut/storage/internal/sizing"
)

// maxPutBlob is the most walnut sends in one Put Blob: 256 MiB is what
// every service version takes (newer ones take 5000 MiB).
const maxPutBlob = 256 << 20

// upload stores r in bb, holding as little of it as it can (package
// sizing): an object of known size up to maxPutBlob is streamed in one Put
// Blob; one of unknown size is read up to 256 KiB into a buffer that grows
// as data arrives, sent from there if it ends, else measured and streamed
// when rewind can rewind its source, else staged as blocks. Blocks go
// Concurrency at a time and are committed at the end, so at most
// Concurrency+1 block buffers are held whatever the object's size.
//
// The SDK's UploadStream would do the same but keeps reading its source to
// the end after a block failed; a backup partition's source is a whole
// compression pipeline, which should stop at once.
//
// cond, when not nil, is sent with the request that makes the blob
// visible (Put Blob, or Put Block List), which Azure refuses when it is
// not met.
func (s *Store) upload(ctx context.Context, bb *blockblob.Client, r io.Reader, size int64, rewind func() error, cond *blob.AccessConditions) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	src := &recordingReader{r: storage.ContextReader(ctx, r)}
	if size < 0 {
		h, err := sizing.ReadHead(src, sizing.Small)
		if err != nil {
			return &sourceError{err: err}
		}
		if !h.More {
			_, err := bb.Upload(ctx, streaming.NopCloser(h.ReadSeeker()), &blockblob.UploadOptions{AccessConditions: cond})
			return err
		}
		if rewind == nil {
			return s.stage(ctx, cancel, bb, io.MultiReader(h.Reader(), src), -1, cond)
		}
		if size, err = sizing.Measure(src, h, rewind, nil); err != nil {
			return &sourceError{err: err}
		}
		src = &recordingReader{r: exactsize.Reader(storage.ContextReader(ctx, r), size)}
	}
	if size > maxPutBlob {
		return s.stage(ctx, cancel, bb, src, size, cond)
	}
	_, err := bb.Upload(ctx, &sizing.Body{R: src, Size: size}, &blockblob.UploadOptions{AccessConditions: cond})
	if err != nil && src.err != nil {
		return &sourceError{err: src.err}
	}
	return err
}

// stage uploads r as blocks and commits them.
func (s *Store) stage(ctx context.Context, cancel context.CancelCauseFunc, bb *blockblob.Client, r io.Reader, size int64, cond *blob.AccessConditions) error {
	bs := s.cfg.BlockSize
	if size > bs*maxBlocks {
		// A known size too large for the default blocks picks larger ones.
		bs = (size + maxBlocks - 1) / maxBlocks
	}
	buf := s.getBuf(bs)
	n, err := io.ReadFull(r, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		defer s.putBuf(buf)
		_, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(buf[:n])), &blockblob.UploadOptions{AccessConditions: cond})
		return err
	}
	if err != nil {
		s.putBuf(buf)
		return &sourceError{err: err}
	}

	var prefix [16]byte
	rand.Read(prefix[:])
	var (
		ids  []string
		wg   sync.WaitGroup
		sem  = make(chan struct{}, s.cfg.Concurrency)
		last bool
	)
stage:
	for {
		if len(ids) == maxBlocks {
			s.putBuf(buf)
			cancel(storage.Permanent(fmt.Errorf("object exceeds %d blocks of %d bytes, the most a block blob holds", maxBlocks, bs)))
			break
		}
		// Every block ID of a blob has the same length, as Azure requires.
		id := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s-%08d", hex.EncodeToString(prefix[:]), len(ids)))
		ids = append(ids, id)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			s.putBuf(buf)
			break stage
		}
		wg.Add(1)
		go func(block []byte) {
			defer wg.Done()
			_, err := bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(block)), nil)
			if err != nil {
				cancel(err)
			}
			s.putBuf(block[:cap(block)])
			<-sem
		}(buf[:n])
		if last {
			break
		}
		buf = s.getBuf(bs)
		n, err = io.ReadFull(r, buf)
		switch {
		case err == io.EOF:
			s.putBuf(buf)
			break stage
		case err == io.ErrUnexpectedEOF:
			last = true
		case err != nil:
			s.putBuf(buf)
			cancel(&sourceError{err: err})
			break stage
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	_, err = bb.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{AccessConditions: cond})
	return err
}

// getBuf returns a buffer of n bytes, reused across uploads of the default
// block size.
func (s *Store) getBuf(n int64) []byte {
	if n == s.cfg.BlockSize {
		if b, ok := s.bufs.Get().(*[]byte); ok {
			return *b
		}
	}
	return make([]byte, n)
}

func (s *Store) putBuf(b []byte) {
	if int64(len(b)) == s.cfg.BlockSize {
		s.bufs.Put(&b)
	}
}

// recordingReader remembers its source's failure, to tell it apart from
// the service's when an SDK reports them alike.
type recordingReader struct {
	r   io.Reader
	err error
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// sourceError is the reader's own failure, reported as is.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }
