package wal

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage/mem"
)

// benchSegment writes a 16 MiB WAL segment that compresses about as well
// as busy WAL does (half its bits random), behind a real page header.
func benchSegment(b *testing.B) string {
	b.Helper()
	body := make([]byte, fixture.SegmentSize)
	rand.NewChaCha8([32]byte{3}).Read(body)
	for i := range body {
		body[i] &= 0x0f
	}
	p := filepath.Join(b.TempDir(), segName)
	fixture.WriteSegmentBody(b, p, fixture.Plain, body)
	return p
}

// BenchmarkWALPush reports wal-push throughput (segment MB/s) into a
// memory store, with and without encryption.
func BenchmarkWALPush(b *testing.B) {
	p := benchSegment(b)
	to, _ := fixture.KeyPair(b)
	for _, bc := range []struct {
		name string
		to   *crypto.Recipients
	}{{"zstd", nil}, {"zstd+pgp", to}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(16 << 20)
			for b.Loop() {
				o := PushOptions{Store: mem.New(), Codec: compression.Default(), Encrypt: bc.to, Path: p, Log: slog.New(slog.DiscardHandler)}
				if _, err := Push(context.Background(), o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWALFetch reports wal-fetch throughput (segment MB/s) from a
// memory store to a synced file, with and without encryption.
func BenchmarkWALFetch(b *testing.B) {
	p := benchSegment(b)
	to, kr := fixture.KeyPair(b)
	for _, bc := range []struct {
		name string
		to   *crypto.Recipients
	}{{"zstd", nil}, {"zstd+pgp", to}} {
		b.Run(bc.name, func(b *testing.B) {
			s := mem.New()
			if _, err := Push(context.Background(), PushOptions{Store: s, Codec: compression.Default(), Encrypt: bc.to, Path: p, Log: slog.New(slog.DiscardHandler)}); err != nil {
				b.Fatal(err)
			}
			dest := filepath.Join(b.TempDir(), "RECOVERYXLOG")
			b.SetBytes(16 << 20)
			for b.Loop() {
				if err := Fetch(context.Background(), FetchOptions{Store: s, Name: segName, Dest: dest, Keyring: kr}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
