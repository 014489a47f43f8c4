package crypto

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// testKey generates a key pair once per test binary and name: generation
// is cheap, but protected keys pay for the S2K on every parse.
var (
	keyMu   sync.Mutex
	keyByID = map[string]*KeyPair{}
)

func testKey(t testing.TB, name, passphrase string) *KeyPair {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	id := name + "\x00" + passphrase
	if kp, ok := keyByID[id]; ok {
		return kp
	}
	var pass []byte
	if passphrase != "" {
		pass = []byte(passphrase)
	}
	kp, err := Generate(name, strings.ToLower(name)+"@example.org", pass)
	if err != nil {
		t.Fatal(err)
	}
	keyByID[id] = kp
	return kp
}

func recipients(t testing.TB, pub ...[]byte) *Recipients {
	t.Helper()
	r, err := ParseRecipients(bytes.Join(pub, []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func keyring(t testing.TB, passphrase string, priv ...[]byte) *Keyring {
	t.Helper()
	var pass []byte
	if passphrase != "" {
		pass = []byte(passphrase)
	}
	k, err := ParseKeyring(bytes.Join(priv, []byte("\n")), pass)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func encrypt(t testing.TB, r *Recipients, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := r.Encrypt(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decryptAll decrypts msg and reads the plaintext to its end, where the
// integrity check runs.
func decryptAll(k *Keyring, msg []byte) ([]byte, error) {
	pr, err := k.Decrypt(bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(pr)
}

// dearmor returns the binary packets of an armored key.
func dearmor(t *testing.T, b []byte) []byte {
	t.Helper()
	blk, err := armor.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(blk.Body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A large stream goes through encryption and decryption with memory that
// does not grow with its size, and comes out as it went in.
func TestStreamingRoundTripBoundedMemory(t *testing.T) {
	const size = 128 << 20
	kp := testKey(t, "Stream", "")
	r, k := recipients(t, kp.Public), keyring(t, "", kp.Private)

	src := &sampledSource{r: io.LimitReader(rand.NewChaCha8([32]byte{1}), size), every: 16 << 20}
	want := sha256.New()
	pr, pw := io.Pipe()
	go func() {
		w, err := r.Encrypt(pw)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		// 1 MiB writes, like a compressor flushing blocks.
		if _, err := io.CopyBuffer(w, io.TeeReader(src, want), make([]byte, 1<<20)); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(w.Close())
	}()
	plain, err := k.Decrypt(pr)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, plain)
	if err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("decrypted %d bytes with another digest than the %d encrypted", n, size)
	}
	if src.maxHeap > 32<<20 {
		t.Fatalf("heap in use reached %d MiB while streaming %d MiB: memory grows with the object", src.maxHeap>>20, size>>20)
	}
	t.Logf("max heap in use while streaming %d MiB: %d MiB", size>>20, src.maxHeap>>20)
}

// sampledSource records the heap in use every so many bytes read.
type sampledSource struct {
	r       io.Reader
	every   int64
	n, next int64
	maxHeap uint64
}

func (s *sampledSource) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if s.n >= s.next {
		s.next += s.every
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.maxHeap = max(s.maxHeap, ms.HeapInuse)
	}
	return n, err
}

func TestEncryptCloseLeavesWriterOpen(t *testing.T) {
	kp := testKey(t, "Close", "")
	var buf closeTracker
	w, err := recipients(t, kp.Public).Encrypt(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.closed {
		t.Fatal("closing the encrypting writer closed the writer under it")
	}
}

type closeTracker struct {
	bytes.Buffer
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestEmptyPlaintext(t *testing.T) {
	kp := testKey(t, "Empty", "")
	got, err := decryptAll(keyring(t, "", kp.Private), encrypt(t, recipients(t, kp.Public), nil))
	if err != nil || len(got) != 0 {
		t.Fatalf("empty message: %q, %v", got, err)
	}
}

func TestArmoredAndBinaryKeys(t *testing.T) {
	kp := testKey(t, "Forms", "")
	plain := []byte("pg_control and friends")
	for _, c := range []struct {
		name      string
		pub, priv []byte
	}{
		{"armored", kp.Public, kp.Private},
		{"binary", dearmor(t, kp.Public), dearmor(t, kp.Private)},
		{"armored with blank lines around", append(append([]byte("\n\n"), kp.Public...), "\n\n"...), append([]byte("  \n"), kp.Private...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := encrypt(t, recipients(t, c.pub), plain)
			got, err := decryptAll(keyring(t, "", c.priv), msg)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("round trip: %q, %v", got, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	kp := testKey(t, "Parse", "")
	firstLine, _, _ := bytes.Cut(kp.Public, []byte("\n"))
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"garbage", []byte("not a key at all"), "not an OpenPGP key"},
		{"envdir first line only", firstLine, "first line"},
		{"a message, not a key", encrypt(t, recipients(t, kp.Public), []byte("x")), "not an OpenPGP key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRecipients(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseRecipients: %v, want an error with %q", err, c.want)
			}
		})
	}
	if _, err := ParseKeyring(kp.Public, nil); err == nil || !strings.Contains(err.Error(), "no private key") {
		t.Fatalf("ParseKeyring of a public key: %v", err)
	}
	if r := recipients(t, kp.Private); !r.HasPrivate() {
		t.Fatal("recipients parsed from a private key do not say they hold one")
	}
	if r := recipients(t, kp.Public); r.HasPrivate() {
		t.Fatal("recipients parsed from a public key say they hold a private one")
	}
}

// Key rotation: a keyring of the old and the new private key reads objects
// encrypted to either; a message to several recipients opens with any one.
func TestKeyringWithSeveralKeys(t *testing.T) {
	oldKey, newKey := testKey(t, "Old", ""), testKey(t, "New", "")
	both := keyring(t, "", newKey.Private, oldKey.Private)
	for name, pub := range map[string][]byte{"old": oldKey.Public, "new": newKey.Public} {
		plain := []byte("encrypted to the " + name + " key")
		got, err := decryptAll(both, encrypt(t, recipients(t, pub), plain))
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("keyring of both keys, object for the %s key: %q, %v", name, got, err)
		}
	}
	// Binary keys concatenated are a keyring too.
	bin := keyring(t, "", append(dearmor(t, oldKey.Private), dearmor(t, newKey.Private)...))
	if _, err := decryptAll(bin, encrypt(t, recipients(t, oldKey.Public), []byte("x"))); err != nil {
		t.Errorf("binary keyring: %v", err)
	}

	toBoth := encrypt(t, recipients(t, oldKey.Public, newKey.Public), []byte("to both"))
	for name, priv := range map[string][]byte{"old": oldKey.Private, "new": newKey.Private} {
		if got, err := decryptAll(keyring(t, "", priv), toBoth); err != nil || string(got) != "to both" {
			t.Errorf("message to both keys, read with the %s key alone: %q, %v", name, got, err)
		}
	}

	// A private-key-only host encrypts to the keyring's first key.
	r, err := both.Recipients()
	if err != nil {
		t.Fatal(err)
	}
	if fp := r.Fingerprints(); len(fp) != 1 || fp[0] != newKey.Fingerprint {
		t.Fatalf("recipients of a keyring: %v, want the first key %s", fp, newKey.Fingerprint)
	}
}

func TestWrongKeyNamesKeyID(t *testing.T) {
	right, wrong := testKey(t, "Right", ""), testKey(t, "Wrong", "")
	r := recipients(t, right.Public)
	msg := encrypt(t, r, []byte("secret"))
	_, err := decryptAll(keyring(t, "", wrong.Private), msg)
	var wk *WrongKeyError
	if !errors.As(err, &wk) {
		t.Fatalf("decrypt with the wrong key: %v, want a WrongKeyError", err)
	}
	// The ID of the encryption subkey is what the message carries and what
	// gpg prints ("encrypted with cv25519 key, ID ...").
	sub := keyID(r.entities[0].Subkeys[0].PublicKey.KeyId)
	if len(wk.Want) != 1 || wk.Want[0] != sub || !strings.Contains(err.Error(), sub) {
		t.Fatalf("wrong-key error %q does not name the key ID %s", err, sub)
	}
	wrongSub := keyID(keyring(t, "", wrong.Private).entities[0].Subkeys[0].PublicKey.KeyId)
	if !strings.Contains(err.Error(), wrongSub) {
		t.Errorf("wrong-key error %q does not name the configured key %s", err, wrongSub)
	}
}

func TestPassphrase(t *testing.T) {
	const pass = "correct horse battery staple"
	kp := testKey(t, "Protected", pass)
	msg := encrypt(t, recipients(t, kp.Public), []byte("behind a passphrase"))

	if got, err := decryptAll(keyring(t, pass, kp.Private), msg); err != nil || string(got) != "behind a passphrase" {
		t.Fatalf("right passphrase: %q, %v", got, err)
	}
	_, err := decryptAll(keyring(t, "wrong "+pass, kp.Private), msg)
	if !errors.Is(err, ErrPassphrase) {
		t.Fatalf("wrong passphrase: %v, want ErrPassphrase", err)
	}
	if strings.Contains(err.Error(), pass) {
		t.Fatalf("error text holds the passphrase: %v", err)
	}
	if _, err := decryptAll(keyring(t, "", kp.Private), msg); !errors.Is(err, ErrNoPassphrase) {
		t.Fatalf("no passphrase for a protected key: %v, want ErrNoPassphrase", err)
	}

	// One keyring unlocks once and then decrypts many objects at once.
	k := keyring(t, pass, kp.Private)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			got, err := decryptAll(k, msg)
			if err == nil && string(got) != "behind a passphrase" {
				err = errors.New("other plaintext")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("parallel decryption: %v", err)
		}
	}
}

// Every alteration fails the read, at the latest at the end of the
// plaintext, never returning different content as good.
func TestTamperingDetected(t *testing.T) {
	kp := testKey(t, "Tamper", "")
	k := keyring(t, "", kp.Private)
	plain := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	msg := encrypt(t, recipients(t, kp.Public), plain)

	for _, c := range []struct {
		name  string
		alter func([]byte) []byte
	}{
		{"byte flipped in the middle", func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b }},
		{"byte flipped in the MDC", func(b []byte) []byte { b[len(b)-3] ^= 0x80; return b }},
		{"last byte cut", func(b []byte) []byte { return b[:len(b)-1] }},
		{"cut in half", func(b []byte) []byte { return b[:len(b)/2] }},
		{"session key altered", func(b []byte) []byte { b[40] ^= 0x01; return b }},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := decryptAll(k, c.alter(bytes.Clone(msg)))
			if err == nil {
				t.Fatalf("altered message decrypted without error (%d bytes, equal: %v)", len(got), bytes.Equal(got, plain))
			}
			if !errors.Is(err, ErrIntegrity) {
				t.Fatalf("altered message: %v, want ErrIntegrity", err)
			}
		})
	}
}

// A failing source (a store dropping the connection) is reported as
// itself, not as tampering.
func TestSourceErrorPassesThrough(t *testing.T) {
	kp := testKey(t, "Source", "")
	msg := encrypt(t, recipients(t, kp.Public), bytes.Repeat([]byte("x"), 1<<20))
	boom := errors.New("connection reset by store")
	for _, at := range []int{10, len(msg) / 2} {
		pr, err := keyring(t, "", kp.Private).Decrypt(io.MultiReader(bytes.NewReader(msg[:at]), errReader{boom}))
		if err == nil {
			_, err = io.ReadAll(pr)
		}
		if !errors.Is(err, boom) {
			t.Errorf("source failing at byte %d: %v, want the source's error", at, err)
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestNotEncrypted(t *testing.T) {
	kp := testKey(t, "Plain", "")
	_, err := decryptAll(keyring(t, "", kp.Private), []byte("(zstd frame, not OpenPGP)"))
	if err == nil {
		t.Fatal("garbage decrypted")
	}
}

// A binary key is used byte for byte: one that happens to end in a byte
// that looks like white space (0x0A, 0x20, 0x85, ...) must still parse.
func TestBinaryKeyEndingInWhiteSpaceByte(t *testing.T) {
	for range 2000 {
		kp, err := Generate("Space", "space@example.org", nil)
		if err != nil {
			t.Fatal(err)
		}
		bin := dearmor(t, kp.Private)
		if len(bytes.TrimSpace(bin)) == len(bin) {
			continue
		}
		k := keyring(t, "", bin)
		msg := encrypt(t, recipients(t, dearmor(t, kp.Public)), []byte("x"))
		if got, err := decryptAll(k, msg); err != nil || string(got) != "x" {
			t.Fatalf("binary key ending in %#x: %q, %v", bin[len(bin)-1], got, err)
		}
		return
	}
	t.Fatal("no generated key ended in a white-space byte")
}
