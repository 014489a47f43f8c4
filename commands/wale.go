package commands

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/config"
)

// waleGlobals are WAL-E's global options, so that a command line written
// for WAL-E runs with walnut in its place. Each either does what it did
// under WAL-E or stops the run with one line naming walnut's way.
type waleGlobals struct {
	prefixes           map[string]*string // flag name -> value
	gpgKeyID           string
	awsKeyID, gsKeyID  string
	wabsAccount        string
	awsInstanceProfile bool
}

// walePrefixFlags maps WAL-E's prefix flags to the variable each stands
// for; config.PrefixSchemes says which schemes it may name.
var walePrefixFlags = []struct{ flag, variable string }{
	{"s3-prefix", "WALE_S3_PREFIX"},
	{"wabs-prefix", "WALE_WABS_PREFIX"},
	{"gs-prefix", "WALE_GS_PREFIX"},
	{"file-prefix", "WALE_FILE_PREFIX"},
}

func (w *waleGlobals) flags() []cli.Flag {
	w.prefixes = map[string]*string{}
	var fs []cli.Flag
	for _, p := range walePrefixFlags {
		v := new(string)
		w.prefixes[p.flag] = v
		scheme := config.PrefixSchemes[p.variable][0]
		fs = append(fs, &cli.StringFlag{Name: p.flag, Usage: fmt.Sprintf("WAL-E's: archive `URL` (%s://...), as --prefix", scheme), Destination: v})
	}
	return append(fs,
		&cli.StringFlag{Name: "gpg-key-id", Usage: "WAL-E's: encrypt new objects to this `KEYID` from gpg's keyring, as WALE_GPG_KEY_ID", Destination: &w.gpgKeyID},
		&cli.StringFlag{Name: "wabs-account-name", Aliases: []string{"a"}, Usage: "WAL-E's: Azure storage account `NAME`, as AZURE_STORAGE_ACCOUNT", Destination: &w.wabsAccount},
		&cli.BoolFlag{Name: "aws-instance-profile", Usage: "WAL-E's: S3 credentials from the instance profile (walnut's default without AWS_ACCESS_KEY_ID)", Destination: &w.awsInstanceProfile},
		// Refused: credentials never come from argv (ps and pg_settings
		// show it). Defined so the refusal names the way that works.
		&cli.StringFlag{Name: "aws-access-key-id", Aliases: []string{"k"}, Usage: "WAL-E's, refused: set AWS_ACCESS_KEY_ID in the envdir", Destination: &w.awsKeyID, Hidden: true},
		&cli.StringFlag{Name: "gs-access-key-id", Usage: "WAL-E's, refused: set GOOGLE_APPLICATION_CREDENTIALS", Destination: &w.gsKeyID, Hidden: true},
	)
}

// apply turns WAL-E's global flags and variables into walnut's settings,
// or refuses them. It runs after --envdir and --env-file are loaded, so
// flags win over files as they did in WAL-E.
func (w *waleGlobals) apply(g *globals, c *cli.Context) error {
	switch {
	case isSet(c, "aws-access-key-id"):
		return usageError(fmt.Errorf("-k/--aws-access-key-id: walnut takes no credentials from the command line, which ps and pg_settings show: set AWS_ACCESS_KEY_ID (with AWS_SECRET_ACCESS_KEY) in the environment or the envdir"))
	case isSet(c, "gs-access-key-id"):
		return usageError(fmt.Errorf("--gs-access-key-id: walnut reaches Google Cloud Storage with a service account, not HMAC keys: set GOOGLE_APPLICATION_CREDENTIALS to its key file in the environment or the envdir"))
	}
	var set []string
	if g.prefix != "" {
		set = append(set, "--prefix")
	}
	for _, p := range walePrefixFlags {
		if !isSet(c, p.flag) {
			continue
		}
		v := *w.prefixes[p.flag]
		set = append(set, "--"+p.flag)
		if err := config.CheckPrefixScheme(p.variable, v); err != nil {
			return usageError(fmt.Errorf("--%s %q: want a URL starting %s://", p.flag, v, strings.Join(config.PrefixSchemes[p.variable], ":// or ")))
		}
		g.prefix = v
	}
	if len(set) > 1 {
		return usageError(fmt.Errorf("%s: give one archive prefix", strings.Join(set, " and ")))
	}
	if g.prefix != "" {
		g.env.Set("WALNUT_PREFIX", g.prefix)
	}
	if isSet(c, "gpg-key-id") {
		if strings.TrimSpace(w.gpgKeyID) == "" {
			return usageError(fmt.Errorf("--gpg-key-id is empty: give the gpg key ID to encrypt to"))
		}
		g.env.Set("WALE_GPG_KEY_ID", w.gpgKeyID)
	}
	if isSet(c, "wabs-account-name") {
		g.env.Set("AZURE_STORAGE_ACCOUNT", w.wabsAccount)
	}
	profile := w.awsInstanceProfile
	if v := g.env.Getenv("AWS_INSTANCE_PROFILE"); v != "" && !profile {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "1", "true":
			profile = true
		case "0", "false":
		default:
			return usageError(fmt.Errorf("AWS_INSTANCE_PROFILE=%q: want 1, true, 0 or false", v))
		}
	}
	if profile {
		return instanceProfileOnly(g.env)
	}
	return nil
}

// instanceProfileOnly checks that walnut's S3 credential chain will reach
// the instance profile, as WAL-E's --aws-instance-profile forced: keys or
// a shared credentials file would be taken first.
func instanceProfileOnly(env *config.Env) error {
	for _, name := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		if env.Getenv(name) != "" {
			return usageError(fmt.Errorf("--aws-instance-profile (or AWS_INSTANCE_PROFILE) with %s set: walnut would use that instead; unset %s to use the instance profile", name, name))
		}
	}
	if home := env.Getenv("HOME"); home != "" {
		if f := filepath.Join(home, ".aws", "credentials"); fileExists(f) {
			return usageError(fmt.Errorf("--aws-instance-profile (or AWS_INSTANCE_PROFILE): %s exists and walnut would use it instead of the instance profile; move it away", f))
		}
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// isSet reports whether the flag was given; tests run before without a
// command line.
func isSet(c *cli.Context, name string) bool { return c != nil && c.IsSet(name) }
