package archive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/crypto"
	"github.com/walnut-pg/walnut/storage"
)

// openWALE opens one of WAL-E's objects: lzop, maybe inside a gpg message.
// WAL-E named both kinds .lzo, so the first bytes decide. An encrypted one
// is opened with a walnut key when the keyring holds one it names (an
// operator may have exported the key), else by the user's own gpg, as
// WAL-E itself did (the agent, a passphrase or a smartcard may guard it).
func openWALE(ctx context.Context, s storage.Store, key string, kr *crypto.Keyring) (io.ReadCloser, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, pipeBufSize)
	head, err := br.Peek(4096)
	if len(head) == 0 && err != nil && err != io.EOF {
		rc.Close()
		return nil, err
	}
	d := &decodedReader{body: rc}
	var compressed io.Reader = br
	switch {
	case bytes.HasPrefix(head, compression.LzopMagic):
	case crypto.IsOpenPGPMessage(head):
		ids := crypto.RecipientKeyIDs(head)
		switch g := kr.GPG(); {
		case kr.HasPrivateKeyFor(ids):
			if d.plain, err = kr.Decrypt(br); err != nil {
				rc.Close()
				return nil, fmt.Errorf("decrypt: %w", err)
			}
		case g != nil:
			p, err := g.Decrypt(ctx, br, key, ids)
			if err != nil {
				rc.Close()
				return nil, err
			}
			d.plain, d.proc = p, p
		default:
			rc.Close()
			return nil, fmt.Errorf("encrypted by WAL-E's gpg to key ID %s, and gpg was not found to decrypt it (install gnupg with that key in its keyring, GNUPGHOME): %w",
				strings.Join(ids, ", "), ErrNoPrivateKey)
		}
		compressed = d.plain
	default:
		rc.Close()
		return nil, &compression.DecodeError{Codec: "lzop", Err: fmt.Errorf("neither lzop nor gpg data at its start: not WAL-E's, or damaged")}
	}
	if d.ReadCloser, err = compression.Lzop().NewReader(compressed); err != nil {
		d.closeProc()
		rc.Close()
		var ge *crypto.GPGError
		if errors.As(err, &ge) {
			return nil, ge // gpg failed before lzop saw a byte: gpg's story alone
		}
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return d, nil
}
