package wal

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

func pushEncrypted(t *testing.T, s storage.Store, path string, to *crypto.Recipients) (PushResult, error) {
	t.Helper()
	return Push(context.Background(), PushOptions{Store: s, Codec: compression.Default(), Encrypt: to, Path: path, Log: slog.New(slog.DiscardHandler)})
}

func fetchTo(s storage.Store, name, dest string, kr *crypto.Keyring) error {
	return Fetch(context.Background(), FetchOptions{Store: s, Name: name, Dest: dest, Keyring: kr, Log: slog.New(slog.DiscardHandler)})
}

// assertNothingAt checks a failed fetch left neither dest nor a temp file.
func assertNothingAt(t *testing.T, dest string) {
	t.Helper()
	if _, err := os.Lstat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after a failed fetch", dest)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".*walnut-tmp*")); len(m) != 0 {
		t.Errorf("temp files left: %v", m)
	}
}

func TestEncryptedWALRoundTripAndMixedArchive(t *testing.T) {
	to, kr := fixture.KeyPair(t)
	s := mem.New()
	dir := t.TempDir()
	plainSeg := fixture.Segment(t, dir, segName, 1)
	encSeg := fixture.Segment(t, dir, "000000010000000000000002", 2)

	if _, err := push(t, s, plainSeg); err != nil {
		t.Fatal(err)
	}
	res, err := pushEncrypted(t, s, encSeg, to)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(res.Key, ".zst.pgp") {
		t.Fatalf("encrypted segment stored as %s, want a .zst.pgp key", res.Key)
	}
	raw := fixture.Object(t, s, res.Key)
	if bytes.Contains(raw, bytes.Repeat([]byte{2}, 64)) {
		t.Fatal("the stored object holds the segment's bytes in the clear")
	}

	// The same file pushed again, now with encryption on (or off), is
	// recognised by its digest: no second object.
	again, err := pushEncrypted(t, s, plainSeg, to)
	if err != nil || !again.AlreadyStored {
		t.Fatalf("plain segment pushed again with encryption on: %+v, %v", again, err)
	}
	again, err = push(t, s, encSeg)
	if err != nil || !again.AlreadyStored || again.Key != res.Key {
		t.Fatalf("encrypted segment pushed again with encryption off: %+v, %v", again, err)
	}

	for _, p := range []string{plainSeg, encSeg} {
		dest := filepath.Join(dir, "got-"+filepath.Base(p))
		if err := fetchTo(s, filepath.Base(p), dest, kr); err != nil {
			t.Fatalf("fetch %s from a mixed archive: %v", filepath.Base(p), err)
		}
		want, _ := os.ReadFile(p)
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, want) {
			t.Fatalf("fetched %s differs from what was pushed", filepath.Base(p))
		}
	}
	// Without a private key the plain segment still fetches; the encrypted
	// one fails with a clear error and writes nothing.
	if err := fetchTo(s, segName, filepath.Join(dir, "plain-nokey"), nil); err != nil {
		t.Fatalf("plain segment without a key: %v", err)
	}
	dest := filepath.Join(dir, "enc-nokey")
	err = fetchTo(s, "000000010000000000000002", dest, nil)
	if !errors.Is(err, archive.ErrNoPrivateKey) || !strings.Contains(err.Error(), res.Key) {
		t.Fatalf("encrypted segment without a key: %v, want ErrNoPrivateKey naming %s", err, res.Key)
	}
	assertNothingAt(t, dest)
}

func TestEncryptedWALWrongKey(t *testing.T) {
	to, _ := fixture.KeyPair(t)
	_, other := fixture.KeyPair(t)
	s := mem.New()
	dir := t.TempDir()
	p := fixture.Segment(t, dir, segName, 1)
	if _, err := pushEncrypted(t, s, p, to); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "fetched")
	err := fetchTo(s, segName, dest, other)
	var wk *crypto.WrongKeyError
	if !errors.As(err, &wk) || len(wk.Want) != 1 || !strings.Contains(err.Error(), wk.Want[0]) {
		t.Fatalf("wrong key: %v, want a WrongKeyError naming the key ID", err)
	}
	assertNothingAt(t, dest)
}

// An altered object never reaches DEST: where the change is in the
// compressed data the decompressor or the digest fails; where it is only in
// the MDC trailer, which a decompressor that stops at the end of its frame
// never asks for, the decryptor's check at the end of the message must
// still be read and fail. Every codec, since each stops differently.
func TestEncryptedWALTampering(t *testing.T) {
	to, kr := fixture.KeyPair(t)
	for _, codec := range compression.Names() {
		for _, c := range []struct {
			name  string
			alter func([]byte) []byte
		}{
			{"MDC trailer", func(b []byte) []byte { b[len(b)-2] ^= 0x01; return b }},
			{"middle", func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b }},
			{"truncated", func(b []byte) []byte { return b[:len(b)-10] }},
		} {
			t.Run(codec+"/"+c.name, func(t *testing.T) {
				s := mem.New()
				dir := t.TempDir()
				p := fixture.Segment(t, dir, segName, 1)
				res, err := Push(context.Background(), PushOptions{Store: s, Codec: mustCodec(t, codec), Encrypt: to, Path: p, Log: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				b := c.alter(fixture.Object(t, s, res.Key))
				if err := s.Put(context.Background(), res.Key, bytes.NewReader(b), int64(len(b))); err != nil {
					t.Fatal(err)
				}
				dest := filepath.Join(dir, "fetched")
				err = fetchTo(s, segName, dest, kr)
				if err == nil {
					t.Fatal("altered object fetched without error")
				}
				if !strings.Contains(err.Error(), res.Key) {
					t.Errorf("error does not name the object: %v", err)
				}
				if c.name == "MDC trailer" && !errors.Is(err, crypto.ErrIntegrity) {
					t.Errorf("altered MDC: %v, want crypto.ErrIntegrity", err)
				}
				assertNothingAt(t, dest)
			})
		}
	}
}

// The retry decorator rewinds an encrypted push: compression and
// encryption start again from the file and the object stored decrypts.
func TestEncryptedWALPushRetriesWithRewind(t *testing.T) {
	to, kr := fixture.KeyPair(t)
	inner := mem.New()
	faulty := storagetest.NewFaulty(inner, storagetest.Fault{Op: storagetest.OpPut, Key: func(k string) bool { return strings.HasPrefix(k, "wal/") }, Times: 2, Midway: 1000})
	s := storage.WithRetry(faulty, storage.RetryPolicy{MaxAttempts: 4, InitialInterval: 1, MaxInterval: 1})
	dir := t.TempDir()
	p := fixture.Segment(t, dir, segName, 7)
	if _, err := pushEncrypted(t, s, p, to); err != nil {
		t.Fatalf("push through two failed attempts: %v", err)
	}
	if n := faulty.Failures(storagetest.OpPut); n != 2 {
		t.Fatalf("%d failed Puts, want 2", n)
	}
	dest := filepath.Join(dir, "fetched")
	if err := fetchTo(inner, segName, dest, kr); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(p)
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, want) {
		t.Fatal("retried encrypted push stored a different object")
	}
}

// files.json is encrypted like the data it describes; an altered one is
// refused even though the JSON decoder stops before the message's end.
