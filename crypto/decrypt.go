package crypto

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
)

var (
	// ErrIntegrity means the message does not decrypt to what was
	// encrypted: its integrity check (MDC) failed, it is truncated, or its
	// session key does not decrypt with the key it names.
	ErrIntegrity = errors.New("OpenPGP integrity check failed: the object was altered or is corrupt")
	// ErrPassphrase means the configured passphrase does not unlock a
	// private key the message needs.
	ErrPassphrase = errors.New("wrong passphrase")
	// ErrNoPassphrase means a private key the message needs is protected
	// and no passphrase was given.
	ErrNoPassphrase = errors.New("protected by a passphrase and none is configured")
	// ErrNotEncrypted means the data is OpenPGP but not encrypted to a key.
	ErrNotEncrypted = errors.New("not an OpenPGP message encrypted to a public key")
)

// headerPeek covers the session key packets of a message to a few
// recipients and the start of its encrypted data.
const headerPeek = 4096

// WrongKeyError means no configured private key is one the message is
// encrypted to.
type WrongKeyError struct {
	Want []string // key IDs the message is encrypted to ("" for a hidden recipient)
	Have []string // key IDs of the keyring's private keys
}

func (e *WrongKeyError) Error() string {
	want := make([]string, len(e.Want))
	for i, id := range e.Want {
		want[i] = id
		if id == "" {
			want[i] = "a hidden recipient"
		}
	}
	return fmt.Sprintf("encrypted to key ID %s, which no configured private key has (configured: %s)",
		strings.Join(want, ", "), strings.Join(e.Have, ", "))
}

// Decrypt returns the plaintext of the OpenPGP message read from r. It
// reads only the message's header before it returns; the body decrypts as
// it is read. The integrity check runs when the plaintext reaches its end,
// so a caller must read to io.EOF before it trusts what it read: an
// altered message fails there with ErrIntegrity. Errors of r itself come
// back unchanged.
func (k *Keyring) Decrypt(r io.Reader) (io.Reader, error) {
	src := &sourceReader{r: r}
	// The header is read before the lock, so that objects opened in
	// parallel wait for their stores at the same time, not in turn.
	br := bufio.NewReaderSize(src, headerPeek)
	br.Peek(headerPeek) // a short object or an error shows on the next read
	rec := &recorder{list: k.entities}
	k.mu.Lock()
	md, err := openpgp.ReadMessage(br, rec, k.unlock, nil)
	k.mu.Unlock()
	if err != nil {
		if src.err != nil {
			return nil, src.err
		}
		return nil, k.explain(err, rec)
	}
	if !md.IsEncrypted || len(rec.wanted) == 0 {
		return nil, ErrNotEncrypted
	}
	return &plaintext{r: md.UnverifiedBody, src: src}, nil
}

// unlock is ReadMessage's prompt: it is called with the protected keys the
// message could be decrypted with, and unlocks them with the passphrase.
// An unlocked key stays so for the life of the keyring.
func (k *Keyring) unlock(keys []openpgp.Key, _ bool) ([]byte, error) {
	var failed error
	unlocked := false
	for _, key := range keys {
		if key.PrivateKey == nil || !key.PrivateKey.Encrypted {
			continue
		}
		id := keyID(key.PrivateKey.KeyId)
		if k.passphrase == nil {
			return nil, fmt.Errorf("private key %s is %w", id, ErrNoPassphrase)
		}
		if err := key.PrivateKey.Decrypt(k.passphrase); err != nil {
			failed = fmt.Errorf("private key %s: %w", id, ErrPassphrase)
			continue
		}
		unlocked = true
	}
	switch {
	case unlocked:
		return nil, nil // ReadMessage tries the unlocked keys
	case failed != nil:
		return nil, failed
	}
	return nil, pgperrors.ErrKeyIncorrect
}

func (k *Keyring) explain(err error, rec *recorder) error {
	switch {
	case errors.Is(err, ErrPassphrase), errors.Is(err, ErrNoPassphrase):
		return err
	case errors.Is(err, pgperrors.ErrKeyIncorrect) && len(rec.wanted) == 0:
		return ErrNotEncrypted
	case errors.Is(err, pgperrors.ErrKeyIncorrect) && !rec.matched:
		return &WrongKeyError{Want: rec.wantedIDs(), Have: k.privateKeyIDs()}
	}
	return readError(err)
}

// readError turns go-crypto's errors for a damaged message into
// ErrIntegrity. It never sees errors of the underlying reader (see
// sourceReader).
func readError(err error) error {
	var sig pgperrors.SignatureError
	var dec pgperrors.DecryptWithSessionKeyError
	var structural pgperrors.StructuralError
	switch {
	case err == io.EOF:
		return err
	case errors.As(err, &sig), errors.As(err, &dec), errors.As(err, &structural),
		errors.Is(err, pgperrors.ErrKeyIncorrect), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrIntegrity
	}
	return fmt.Errorf("not a readable OpenPGP message: %w", err)
}

func (k *Keyring) privateKeyIDs() []string {
	var ids []string
	for _, e := range k.entities {
		if e.PrivateKey != nil {
			ids = append(ids, keyID(e.PrimaryKey.KeyId))
		}
		for _, sk := range e.Subkeys {
			if sk.PrivateKey != nil {
				ids = append(ids, keyID(sk.PublicKey.KeyId))
			}
		}
	}
	return ids
}

// plaintext maps go-crypto's errors on the way and keeps the underlying
// reader's own errors (a store failing mid-object is not tampering).
type plaintext struct {
	r   io.Reader
	src *sourceReader
}

func (p *plaintext) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	switch {
	case err == nil || err == io.EOF:
		return n, err
	case p.src.err != nil:
		return n, p.src.err
	}
	return n, readError(err)
}

// sourceReader remembers the first error of the ciphertext's reader:
// go-crypto reports every error inside the encrypted data as a generic
// parsing error, store failures included.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// recorder is the keyring ReadMessage sees: it notes which key IDs the
// message asks for, so a wrong-key error can name them.
type recorder struct {
	list    openpgp.EntityList
	wanted  []uint64
	matched bool // a private key with a wanted ID exists
}

func (r *recorder) KeysById(id uint64) []openpgp.Key {
	r.wanted = append(r.wanted, id)
	keys := r.list.KeysById(id)
	r.note(keys)
	return keys
}

func (r *recorder) KeysByIdUsage(id uint64, usage byte) []openpgp.Key {
	return r.list.KeysByIdUsage(id, usage)
}

// DecryptionKeys is asked for a hidden recipient (key ID 0).
func (r *recorder) DecryptionKeys() []openpgp.Key {
	r.wanted = append(r.wanted, 0)
	keys := r.list.DecryptionKeys()
	r.note(keys)
	return keys
}

func (r *recorder) note(keys []openpgp.Key) {
	for _, k := range keys {
		if k.PrivateKey != nil {
			r.matched = true
		}
	}
}

func (r *recorder) wantedIDs() []string {
	ids := make([]string, len(r.wanted))
	for i, id := range r.wanted {
		if id != 0 {
			ids[i] = keyID(id)
		}
	}
	return ids
}
