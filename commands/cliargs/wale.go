package cliargs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/walnut-pg/walnut/config"
)

// WALEGlobals are WAL-E's global options, so that a command line written
// for WAL-E runs with walnut in its place. Each either does what it did
// under WAL-E or stops the run with one line naming walnut's way.
type WALEGlobals struct {
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

func (w *WALEGlobals) Flags() []cli.Flag {
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

// Apply turns WAL-E's global flags and variables into walnut's settings
// in env, or refuses them; prefix is --prefix's value, which a WAL-E
// prefix flag sets, and isSet says whether a flag was given. It runs after
// --envdir and --env-file are loaded, so flags win over files as they did
// in WAL-E. Every error it returns is a usage error.
func (w *WALEGlobals) Apply(env *config.Env, prefix *string, isSet func(name string) bool) error {
	switch {
	case isSet("aws-access-key-id"):
		return fmt.Errorf("-k/--aws-access-key-id: walnut takes no credentials from the command line, which ps and pg_settings show: set AWS_ACCESS_KEY_ID (with AWS_SECRET_ACCESS_KEY) in the environment or the envdir")
	case isSet("gs-access-key-id"):
		return fmt.Errorf("--gs-access-key-id: walnut reaches Google Cloud Storage with a service account, not HMAC keys: set GOOGLE_APPLICATION_CREDENTIALS to its key file in the environment or the envdir")
	}
	var set []string
	if *prefix != "" {
		set = append(set, "--prefix")
	}
	for _, p := range walePrefixFlags {
		if !isSet(p.flag) {
			continue
		}
		v := *w.prefixes[p.flag]
		set = append(set, "--"+p.flag)
		if err := config.CheckPrefixScheme(p.variable, v); err != nil {
			return fmt.Errorf("--%s %q: want a URL starting %s://", p.flag, v, strings.Join(config.PrefixSchemes[p.variable], ":// or "))
		}
		*prefix = v
	}
	if len(set) > 1 {
		return fmt.Errorf("%s: give one archive prefix", strings.Join(set, " and "))
	}
	if *prefix != "" {
		env.Set("WALNUT_PREFIX", *prefix)
	}
	if isSet("gpg-key-id") {
		if strings.TrimSpace(w.gpgKeyID) == "" {
			return fmt.Errorf("--gpg-key-id is empty: give the gpg key ID to encrypt to")
		}
		env.Set("WALE_GPG_KEY_ID", w.gpgKeyID)
	}
	if isSet("wabs-account-name") {
		env.Set("AZURE_STORAGE_ACCOUNT", w.wabsAccount)
	}
	profile := w.awsInstanceProfile
	if v := env.Getenv("AWS_INSTANCE_PROFILE"); v != "" && !profile {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "1", "true":
			profile = true
		case "0", "false":
		default:
			return fmt.Errorf("AWS_INSTANCE_PROFILE=%q: want 1, true, 0 or false", v)
		}
	}
	if profile {
		return instanceProfileOnly(env)
	}
	return nil
}

// instanceProfileOnly checks that walnut's S3 credential chain will reach
// the instance profile, as WAL-E's --aws-instance-profile forced: keys or
// a shared credentials file would be taken first.
func instanceProfileOnly(env *config.Env) error {
	for _, name := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		if env.Getenv(name) != "" {
			return fmt.Errorf("--aws-instance-profile (or AWS_INSTANCE_PROFILE) with %s set: walnut would use that instead; unset %s to use the instance profile", name, name)
		}
	}
	if home := env.Getenv("HOME"); home != "" {
		if f := filepath.Join(home, ".aws", "credentials"); fileExists(f) {
			return fmt.Errorf("--aws-instance-profile (or AWS_INSTANCE_PROFILE): %s exists and walnut would use it instead of the instance profile; move it away", f)
		}
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
