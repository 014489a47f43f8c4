package commands

import (
	"fmt"
	"sort"
)

// unusedEncryption are settings with which other tools encrypt what they
// store and walnut does not (yet) understand. An envdir brought over from
// WAL-E or WAL-G keeps working otherwise, so with one of these present a
// write would store plaintext while its operator believes the archive
// encrypted. wal-push and backup-push refuse to run instead.
var unusedEncryption = map[string]string{
	"WALG_GPG_KEY_ID":              "WAL-G's gpg key",
	"WALG_LIBSODIUM_KEY":           "WAL-G's libsodium key",
	"WALG_LIBSODIUM_KEY_PATH":      "WAL-G's libsodium key",
	"WALG_LIBSODIUM_KEY_TRANSFORM": "WAL-G's libsodium key",
	"WALG_CSE_KMS_ID":              "WAL-G's client-side KMS encryption",
	"WALG_CSE_KMS_REGION":          "WAL-G's client-side KMS encryption",
	"WALG_S3_SSE":                  "WAL-G's S3 server-side encryption (walnut's is WALNUT_S3_SSE)",
	"WALG_S3_SSE_KMS_ID":           "WAL-G's S3 server-side encryption (walnut's is WALNUT_S3_SSE_KMS_ID)",
}

// refuseUnusedEncryption fails when a setting of unusedEncryption is set,
// naming the first.
func (g *globals) refuseUnusedEncryption() error {
	var set []string
	for name := range unusedEncryption {
		if g.env.Getenv(name) != "" {
			set = append(set, name)
		}
	}
	if len(set) == 0 {
		return nil
	}
	sort.Strings(set)
	name := set[0]
	return usageError(fmt.Errorf("%s is set (%s), but walnut does not encrypt with it: refusing to store anything unencrypted; "+
		"encrypt with WALNUT_PGP_PUBLIC_KEY_FILE (see walnut keys create) and unset %s", name, unusedEncryption[name], name))
}
