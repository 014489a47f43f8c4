package crypto

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// The size of a default WAL segment.
const benchSize = 16 << 20

func benchPlaintext() []byte {
	b := make([]byte, benchSize)
	rand.NewChaCha8([32]byte{2}).Read(b)
	return b
}

// BenchmarkEncrypt reports encryption throughput (MB/s) of one segment.
func BenchmarkEncrypt(b *testing.B) {
	r := recipients(b, testKey(b, "Bench", "").Public)
	plain := benchPlaintext()
	b.SetBytes(benchSize)
	for b.Loop() {
		w, err := r.Encrypt(io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(w, bytes.NewReader(plain), make([]byte, 256<<10)); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecrypt reports decryption throughput (MB/s) of one segment,
// including the per-message public-key step.
func BenchmarkDecrypt(b *testing.B) {
	kp := testKey(b, "Bench", "")
	msg := encrypt(b, recipients(b, kp.Public), benchPlaintext())
	k := keyring(b, "", kp.Private)
	b.SetBytes(benchSize)
	for b.Loop() {
		pr, err := k.Decrypt(bytes.NewReader(msg))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, pr); err != nil {
			b.Fatal(err)
		}
	}
}
