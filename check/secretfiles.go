package check

import "strings"

// SecretFiles are the files a run's configuration reads secrets from: the
// envdir and env file (they may hold store credentials), and the key,
// passphrase and credential files the settings (getenv) name.
func SecretFiles(envdir, envFile string, getenv func(string) string) []SecretFile {
	var out []SecretFile
	if envdir != "" {
		out = append(out, SecretFile{Setting: "--envdir", Path: envdir, Dir: true})
	}
	if envFile != "" {
		out = append(out, SecretFile{Setting: "--env-file", Path: envFile})
	}
	for _, name := range []string{"WALNUT_PGP_PRIVATE_KEY_FILE", "WALG_PGP_KEY_PATH", "WALNUT_PGP_PASSPHRASE_FILE",
		"GOOGLE_APPLICATION_CREDENTIALS", "PGPASSFILE"} {
		if p := strings.TrimSpace(getenv(name)); p != "" {
			out = append(out, SecretFile{Setting: name, Path: p})
		}
	}
	return out
}
