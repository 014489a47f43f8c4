package s3

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	envAccessKey     = "AWS_ACCESS_KEY_ID"
	envSecretKey     = "AWS_SECRET_ACCESS_KEY"
	envSessionToken  = "AWS_SESSION_TOKEN"
	envSecurityToken = "AWS_SECURITY_TOKEN" // boto's name, in old WAL-E envdirs
)

// creds holds what signs requests, and the values that must never
// appear in an error.
type creds struct {
	provider *credentials.Credentials
	static   bool     // keys came from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
	secrets  []string // static secret and token, scrubbed from errors
}

// newCreds uses the keys in getenv when there are any, and otherwise the
// standard chain: shared credentials file (AWS_SHARED_CREDENTIALS_FILE,
// AWS_PROFILE), web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN),
// ECS/EKS container credentials and the EC2 instance role. Values are
// handed to the providers explicitly because getenv may come from an
// envdir that the process environment never saw.
func newCreds(getenv func(string) string) (creds, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	id, secret := get(envAccessKey), get(envSecretKey)
	token := get(envSessionToken)
	if token == "" {
		token = get(envSecurityToken)
	}
	switch {
	case id != "" && secret != "":
		var secrets []string
		for _, s := range []string{secret, token} {
			if s != "" {
				secrets = append(secrets, s)
			}
		}
		// Longest first: one may contain the other.
		slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
		return creds{provider: credentials.NewStaticV4(id, secret, token), static: true, secrets: secrets}, nil
	case id != "":
		return creds{}, fmt.Errorf("%s is set but %s is not", envAccessKey, envSecretKey)
	case secret != "":
		return creds{}, fmt.Errorf("%s is set but %s is not", envSecretKey, envAccessKey)
	}
	iam := &credentials.IAM{
		// The instance metadata service answers in milliseconds where it
		// exists; elsewhere this bounds the wait for it.
		Client: &http.Client{Timeout: 5 * time.Second},
		Region: get(envRegion),
	}
	iam.Container.AuthorizationToken = get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
	iam.Container.AuthorizationTokenFile = get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
	iam.Container.CredentialsRelativeURI = get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
	iam.Container.CredentialsFullURI = get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
	iam.EKSIdentity.TokenFile = get("AWS_WEB_IDENTITY_TOKEN_FILE")
	iam.EKSIdentity.RoleARN = get("AWS_ROLE_ARN")
	iam.EKSIdentity.RoleSessionName = get("AWS_ROLE_SESSION_NAME")
	if iam.Region == "" {
		iam.Region = get(envDefaultRegion)
	}
	chain := &credentials.Chain{Providers: []credentials.Provider{
		&credentials.FileAWSCredentials{Filename: get("AWS_SHARED_CREDENTIALS_FILE"), Profile: get("AWS_PROFILE")},
		iam,
	}}
	return creds{provider: credentials.New(&anonymousOnce{chain: chain})}, nil
}

// anonymousOnce remembers for a while that the chain found nothing.
// minio-go asks the chain again before every request when it last came up
// empty, and each time that may mean waiting for an instance metadata
// service that is not there.
type anonymousOnce struct {
	chain *credentials.Chain
	mu    sync.Mutex
	until time.Time
}

func (a *anonymousOnce) Retrieve() (credentials.Value, error) {
	return a.RetrieveWithCredContext(nil)
}

func (a *anonymousOnce) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	v, err := a.chain.RetrieveWithCredContext(cc)
	if err == nil && v.SignerType.IsAnonymous() {
		a.mu.Lock()
		a.until = time.Now().Add(time.Minute)
		a.mu.Unlock()
	}
	return v, err
}

func (a *anonymousOnce) IsExpired() bool {
	a.mu.Lock()
	fresh := time.Now().Before(a.until)
	a.mu.Unlock()
	return !fresh && a.chain.IsExpired()
}
