package commands

import (
	"os/exec"
	"strings"

	"github.com/walnut-pg/walnut/crypto"
)

// gpgEnvVars are what gpg and its agent read, taken from --envdir or
// --env-file as well, since WAL-E's envdir may set GNUPGHOME.
var gpgEnvVars = []string{"GNUPGHOME", "GPG_AGENT_INFO", "GPG_TTY", "HOME"}

// gpgFallback is the user's gpg, which decrypts WAL-E's encrypted objects
// when no walnut key opens them, or nil when gpg is not installed (the
// error then names the key ID the object needs).
func (g *globals) gpgFallback() *crypto.GPG {
	path, err := exec.LookPath("gpg")
	if err != nil {
		return nil
	}
	env := make([]string, 0, len(g.environ)+len(gpgEnvVars))
	for _, kv := range g.environ {
		name, _, _ := strings.Cut(kv, "=")
		if _, set := g.env.Get(name); set && isGPGVar(name) {
			continue
		}
		env = append(env, kv)
	}
	for _, name := range gpgEnvVars {
		if v, set := g.env.Get(name); set {
			env = append(env, name+"="+v)
		}
	}
	return &crypto.GPG{Program: path, Env: env}
}

func isGPGVar(name string) bool {
	for _, v := range gpgEnvVars {
		if v == name {
			return true
		}
	}
	return false
}
