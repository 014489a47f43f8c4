package crypto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// GPGRecipient takes the public key keyID names from the user's gpg
// keyring (gpg --export, run as the program gpg with environ, so GNUPGHOME
// is the one the caller configured), as WAL-E's `gpg -e -r KEYID` found
// it. keyID is anything gpg accepts: a key ID, a fingerprint, an address.
// It must name exactly one key that can encrypt now: more than one is
// refused rather than encrypting to keys the operator did not mean.
func GPGRecipient(ctx context.Context, gpg, keyID string, environ []string) (*Recipients, error) {
	if strings.TrimSpace(keyID) == "" {
		return nil, errors.New("gpg key ID is empty")
	}
	cmd := exec.CommandContext(ctx, gpg, "--batch", "--no-tty", "--export", "--", keyID)
	cmd.Env = environ
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("gpg key %s: gpg --export failed: %v: %s", keyID, err, firstStderrLine(stderr.Bytes()))
	}
	if stdout.Len() == 0 {
		return nil, fmt.Errorf("gpg key %s is not in the gpg keyring (gpg --export printed nothing; check GNUPGHOME and gpg --list-keys %s)", keyID, keyID)
	}
	el, err := readEntities(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("gpg key %s: gpg --export: %w", keyID, err)
	}
	now := time.Now()
	var usable []string
	r := &Recipients{}
	for _, e := range el {
		if _, ok := e.EncryptionKey(now); ok {
			r.entities = append(r.entities, e)
			usable = append(usable, Fingerprint(e))
		}
	}
	switch len(r.entities) {
	case 0:
		return nil, fmt.Errorf("gpg key %s has no usable encryption subkey (expired, revoked or signing-only)", keyID)
	case 1:
		return r, nil
	}
	return nil, fmt.Errorf("gpg key %s names %d keys that can encrypt (%s): give one fingerprint", keyID, len(usable), strings.Join(usable, ", "))
}

func firstStderrLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return "no message"
}

// Merge returns the recipients of r and o together, each key once: an
// object encrypted to both opens with either's private key.
func (r *Recipients) Merge(o *Recipients) *Recipients {
	switch {
	case r == nil:
		return o
	case o == nil:
		return r
	}
	out := &Recipients{}
	seen := map[string]bool{}
	for _, e := range append(append(openpgp.EntityList{}, r.entities...), o.entities...) {
		fp := Fingerprint(e)
		if !seen[fp] {
			seen[fp] = true
			out.entities = append(out.entities, e)
		}
	}
	return out
}
