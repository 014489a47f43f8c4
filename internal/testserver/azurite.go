package testserver

import (
	"context"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/walnut-pg/walnut/internal/testpg"
)

// Azurite's well-known development account. Microsoft publishes the key;
// it guards nothing.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is a running Azurite blob service.
type Azurite struct {
	*Process
	// Endpoint is the blob service URL with the account in its path, as
	// AZURE_STORAGE_ENDPOINT takes it.
	Endpoint string
}

// StartAzurite starts Azurite's blob service (npm package azurite, binary
// azurite-blob) on a free port with its data in a temp dir. A missing
// binary is reported through testpg.Require as "azurite".
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	bin, err := LookPath("azurite-blob")
	testpg.Require(t, "azurite", err)
	port := strconv.Itoa(FreePort(t))
	dir := t.TempDir()
	cmd := exec.Command(bin,
		"--blobHost", "127.0.0.1", "--blobPort", port,
		"--location", dir,
		// The SDK speaks a newer API version than Azurite may know.
		"--skipApiVersionCheck", "--loose",
		// Longer than the client keeps idle connections, so the server
		// never closes one the client is about to reuse.
		"--blobKeepAliveTimeout", "120",
		"--silent", "--disableTelemetry")
	cmd.Dir = dir
	p := Start(t, "azurite", "127.0.0.1:"+port, cmd, time.Minute)
	return &Azurite{Process: p, Endpoint: "http://127.0.0.1:" + port + "/" + AzuriteAccount}
}

// Env returns the variables that point walnut at this server.
func (a *Azurite) Env() []string {
	return []string{
		"AZURE_STORAGE_ACCOUNT=" + AzuriteAccount,
		"AZURE_STORAGE_KEY=" + AzuriteKey,
		"AZURE_STORAGE_ENDPOINT=" + a.Endpoint,
	}
}

// CreateContainer creates container name.
func (a *Azurite) CreateContainer(t testing.TB, name string) {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(AzuriteAccount, AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := container.NewClientWithSharedKeyCredential(a.Endpoint+"/"+name, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatalf("create container %s in azurite: %v", name, err)
	}
}
