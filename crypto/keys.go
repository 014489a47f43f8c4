// Package crypto encrypts and decrypts walnut's objects as OpenPGP messages
// that stock gpg reads (v4 keys, SEIPDv1 with MDC, nothing compressed at
// the OpenPGP layer), streaming, so memory never grows with an object. It
// parses keys from bytes and generates key pairs; it reads no files and no
// environment.
package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// Recipients are the public keys new objects are encrypted to. A push host
// needs nothing else.
type Recipients struct {
	entities openpgp.EntityList
}

// Keyring holds the private keys that decrypt objects: during a key
// rotation, old keys beside new ones, so every object stays readable. Key
// material protected by a passphrase is unlocked on first use, and only the
// keys an object needs.
type Keyring struct {
	// mu serialises header parsing: unlocking a key and decrypting a
	// session key change shared key state. Bodies decrypt in parallel.
	mu         sync.Mutex
	entities   openpgp.EntityList
	passphrase []byte
	gpg        *GPG // fallback for WAL-E's objects: the user's own gpg
}

// ParseRecipients reads one or more public keys, armored or binary. Every
// key must be able to encrypt now (not expired or revoked, with an
// encryption subkey).
func ParseRecipients(b []byte) (*Recipients, error) {
	el, err := readEntities(b)
	if err != nil {
		return nil, err
	}
	if err := canEncrypt(el); err != nil {
		return nil, err
	}
	return &Recipients{entities: el}, nil
}

func canEncrypt(el openpgp.EntityList) error {
	now := time.Now()
	for _, e := range el {
		if _, ok := e.EncryptionKey(now); !ok {
			return fmt.Errorf("key %s has no usable encryption subkey (expired, revoked or signing-only)", Fingerprint(e))
		}
	}
	return nil
}

// ParseKeyring reads one or more keys, armored or binary, of which at least
// one must hold private key material. passphrase unlocks protected keys
// (nil: none given).
func ParseKeyring(b, passphrase []byte) (*Keyring, error) {
	el, err := readEntities(b)
	if err != nil {
		return nil, err
	}
	if !hasPrivate(el) {
		return nil, errors.New("holds no private key (is it the public key?)")
	}
	return &Keyring{entities: el, passphrase: passphrase}, nil
}

// Recipients returns the public half of the keyring's first key, for a host
// configured with a private key only (as WAL-G's WALG_PGP_KEY is): with
// several keys, the first is the current one.
func (k *Keyring) Recipients() (*Recipients, error) {
	el := k.entities[:1]
	if err := canEncrypt(el); err != nil {
		return nil, err
	}
	return &Recipients{entities: el}, nil
}

// Fingerprints lists the recipients' primary key fingerprints, for logs.
func (r *Recipients) Fingerprints() []string {
	out := make([]string, len(r.entities))
	for i, e := range r.entities {
		out[i] = Fingerprint(e)
	}
	return out
}

// HasPrivate reports whether any recipient key came with private key
// material, which a push host should not hold.
func (r *Recipients) HasPrivate() bool { return hasPrivate(r.entities) }

func hasPrivate(el openpgp.EntityList) bool {
	for _, e := range el {
		if e.PrivateKey != nil {
			return true
		}
		for _, sk := range e.Subkeys {
			if sk.PrivateKey != nil {
				return true
			}
		}
	}
	return false
}

// Fingerprint is e's primary key fingerprint as gpg prints it.
func Fingerprint(e *openpgp.Entity) string {
	return fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
}

func keyID(id uint64) string { return fmt.Sprintf("%016X", id) }

const armorStart = "-----BEGIN PGP "

// readEntities parses keys in any of the forms operators hand over: one
// armored block, several concatenated (a keyring made with cat), or binary.
func readEntities(raw []byte) (openpgp.EntityList, error) {
	// Only armor may be trimmed: a binary key can end in a byte that
	// looks like white space.
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return nil, errors.New("is empty")
	}
	if !bytes.HasPrefix(b, []byte(armorStart)) {
		el, err := openpgp.ReadKeyRing(bytes.NewReader(raw))
		if err == nil && len(el) == 0 {
			err = errors.New("no key found")
		}
		if err != nil {
			return nil, fmt.Errorf("not an OpenPGP key, binary or armored: %w", err)
		}
		return el, nil
	}
	if !bytes.Contains(b, []byte("\n")) {
		return nil, errors.New("holds only the armor's first line (an envdir keeps only the first line of a file: name a key file instead)")
	}
	var all openpgp.EntityList
	for block := range armoredBlocks(b) {
		p, err := armor.Decode(bytes.NewReader(block))
		if err != nil {
			return nil, fmt.Errorf("armored key: %w", err)
		}
		if p.Type != openpgp.PublicKeyType && p.Type != openpgp.PrivateKeyType {
			return nil, fmt.Errorf("armored block is a %q, not a public or private key", strings.ToLower(p.Type))
		}
		el, err := openpgp.ReadKeyRing(p.Body)
		if err != nil {
			return nil, fmt.Errorf("armored key: %w", err)
		}
		all = append(all, el...)
	}
	if len(all) == 0 {
		return nil, errors.New("holds no key walnut can use")
	}
	return all, nil
}

// armoredBlocks yields each armored block of b; armor.Decode alone would
// read only the first.
func armoredBlocks(b []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			next := bytes.Index(b[1:], []byte("\n"+armorStart))
			if next < 0 {
				yield(b)
				return
			}
			if !yield(b[:next+1]) {
				return
			}
			b = b[next+2:]
		}
	}
}
