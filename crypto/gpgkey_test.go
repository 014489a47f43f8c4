package crypto

import (
	"bytes"
	"testing"
)

// Merged recipients hold each key once, and what is encrypted to them
// opens with either private key: walnut's key beside WAL-E's gpg key.
func TestMergeRecipients(t *testing.T) {
	a, b := testKey(t, "A", ""), testKey(t, "B", "")
	ra, rb := recipients(t, a.Public), recipients(t, b.Public)
	m := ra.Merge(rb).Merge(recipients(t, a.Public))
	if fps := m.Fingerprints(); len(fps) != 2 || fps[0] != a.Fingerprint || fps[1] != b.Fingerprint {
		t.Fatalf("merged %v, want %s and %s once each", fps, a.Fingerprint, b.Fingerprint)
	}
	var nilR *Recipients
	if nilR.Merge(ra) != ra || ra.Merge(nil) != ra {
		t.Error("merging with nil should return the other")
	}
	plain := []byte("to both keys")
	msg := encrypt(t, m, plain)
	for _, kp := range []*KeyPair{a, b} {
		got, err := decryptAll(keyring(t, "", kp.Private), msg)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("key %s: %q, %v", kp.Fingerprint, got, err)
		}
	}
}
