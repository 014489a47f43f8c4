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
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/walnut-pg/walnut/storage"
)

// upload stores r in bb: one Put Blob when r fits in one block, else
// blocks staged Concurrency at a time and committed at the end, so at most
// Concurrency+1 block buffers are held whatever the object's size.
//
// The SDK's UploadStream would do the same but keeps reading its source to
// the end after a block failed; a backup partition's source is a whole
// compression pipeline, which should stop at once.
func (s *Store) upload(ctx context.Context, bb *blockblob.Client, r io.Reader, size int64) error {
	bs := s.cfg.BlockSize
	if size > bs*maxBlocks {
		// A known size too large for the default blocks picks larger ones.
		bs = (size + maxBlocks - 1) / maxBlocks
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r = storage.ContextReader(ctx, r)

	buf := s.getBuf(bs)
	n, err := io.ReadFull(r, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		defer s.putBuf(buf)
		_, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(buf[:n])), nil)
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
	_, err = bb.CommitBlockList(ctx, ids, nil)
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

// sourceError is the reader's own failure, reported as is.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }
