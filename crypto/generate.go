package crypto

import (
	"bytes"
	"crypto"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

const defaultHash = crypto.SHA256

// KeyPair is a new key, armored.
type KeyPair struct {
	Public, Private []byte
	Fingerprint     string
	// Algorithm names the key for humans, as gpg --list-keys does.
	Algorithm string
}

// Generate makes a v4 key that Debian 12's gpg 2.2 imports and encrypts
// to: an Ed25519 (EdDSA, legacy OID) primary key for certification and a
// Curve25519 ECDH subkey for encryption, preferring AES-256 and SEIPDv1
// (no AEAD, which gpg 2.2 cannot read), never expiring, since backups
// must stay readable for as long as they are kept. A non-empty passphrase
// protects the private key (iterated and salted S2K, AES-256, as gpg
// writes it).
func Generate(name, email string, passphrase []byte) (*KeyPair, error) {
	cfg := &packet.Config{
		Algorithm:              packet.PubKeyAlgoEdDSA,
		Curve:                  packet.Curve25519,
		DefaultHash:            defaultHash,
		DefaultCipher:          packet.CipherAES256,
		DefaultCompressionAlgo: packet.CompressionNone,
	}
	e, err := openpgp.NewEntity(name, "", email, cfg)
	if err != nil {
		return nil, err
	}
	kp := &KeyPair{Fingerprint: Fingerprint(e), Algorithm: "ed25519/cv25519"}
	var pub bytes.Buffer
	if err := writeArmored(&pub, openpgp.PublicKeyType, e.Serialize); err != nil {
		return nil, err
	}
	if len(passphrase) > 0 {
		if err := e.EncryptPrivateKeys(passphrase, cfg); err != nil {
			return nil, err
		}
	}
	var priv bytes.Buffer
	if err := writeArmored(&priv, openpgp.PrivateKeyType, func(w io.Writer) error {
		return e.SerializePrivateWithoutSigning(w, nil)
	}); err != nil {
		return nil, err
	}
	kp.Public, kp.Private = pub.Bytes(), priv.Bytes()
	return kp, nil
}

func writeArmored(out *bytes.Buffer, blockType string, serialize func(w io.Writer) error) error {
	w, err := armor.Encode(out, blockType, nil)
	if err != nil {
		return err
	}
	if err := serialize(w); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	out.WriteByte('\n')
	return nil
}
