package azure_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walnut-pg/walnut/internal/testserver"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/azure"
	"github.com/walnut-pg/walnut/storage/storagetest"
)

// devConfig is a store on container in az under prefix.
func devConfig(az *testserver.Azurite, container, prefix string) azure.Config {
	return azure.Config{
		Container:     container,
		Prefix:        prefix,
		Endpoint:      az.Endpoint,
		Account:       testserver.AzuriteAccount,
		Key:           testserver.AzuriteKey,
		CredentialVar: "AZURE_STORAGE_KEY",
		MaxRetries:    1,
		IOTimeout:     30 * time.Second,
	}
}

func newStore(t *testing.T, cfg azure.Config) *azure.Store {
	t.Helper()
	s, err := azure.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, "walnut")
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return newStore(t, devConfig(az, "walnut", fmt.Sprintf("suite/%d/", n.Add(1))))
	})
}

// A prefix at the container's root works the same as one below it.
func TestContainerRoot(t *testing.T) {
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, "root")
	storagetest.Run(t, func(t *testing.T) storage.Store {
		// Each subtest empties the container for the next.
		s := newStore(t, devConfig(az, "root", ""))
		t.Cleanup(func() { deleteAll(t, s) })
		return s
	})
}

func deleteAll(t *testing.T, s storage.Store) {
	var keys []string
	if err := s.List(context.Background(), "", func(info storage.ObjectInfo) error {
		keys = append(keys, info.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := s.Delete(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
}

// everyCall runs each Store method once, a streamed Put of several blocks
// too, and returns their errors by name.
func everyCall(ctx context.Context, s storage.Store) map[string]error {
	return storagetest.EveryCall(ctx, s, 5<<20)
}

func TestMissingContainerIsPermanent(t *testing.T) {
	az := testserver.StartAzurite(t)
	s := newStore(t, devConfig(az, "nosuchcontainer", "p/"))
	storagetest.WantPermanent(t, "on a missing container", everyCall(t.Context(), s),
		`container "nosuchcontainer" not found in storage account "devstoreaccount1"`)
}

const secretKey = "SFVOVEVSMi1kaXN0aW5jdGl2ZS1zZWNyZXQta2V5LWZvci13YWxudXQ=" // base64 of a distinctive marker

func TestWrongKeyIsPermanentAndSecret(t *testing.T) {
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, "walnut")
	cfg := devConfig(az, "walnut", "p/")
	cfg.Key = secretKey
	s := newStore(t, cfg)
	errs := everyCall(t.Context(), s)
	storagetest.WantPermanent(t, "with a wrong key", errs,
		`access to container "walnut" in storage account "devstoreaccount1" denied`, "check AZURE_STORAGE_KEY")
	for op, err := range errs {
		storagetest.NoSecret(t, op, err, secretKey)
	}
}

// A SAS token's signature travels in every request URL, and SDK errors
// quote URLs: neither a refused token nor an unreachable service may show it.
func TestSASNeverInErrors(t *testing.T) {
	const sig = "HUNTER2sasSIGNATURE"
	sas := "sv=2022-11-02&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00:00:00Z&st=2020-01-01T00:00:00Z&spr=https,http&sig=" + sig + "%3D"
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, "walnut")
	dead := "http://127.0.0.1:" + fmt.Sprint(testserver.FreePort(t)) + "/" + testserver.AzuriteAccount
	for _, endpoint := range []string{az.Endpoint, dead} {
		cfg := devConfig(az, "walnut", "p/")
		cfg.Key, cfg.SAS, cfg.CredentialVar, cfg.Endpoint = "", sas, "AZURE_STORAGE_SAS_TOKEN", endpoint
		cfg.MaxRetries = -1
		s := newStore(t, cfg)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		for op, err := range everyCall(ctx, s) {
			t.Logf("%s: %v", op, err)
			if err == nil {
				t.Errorf("%s against %s with a forged SAS succeeded", op, endpoint)
				continue
			}
			storagetest.NoSecret(t, op, err, sig, "se=2099")
			if endpoint == az.Endpoint && (!storage.IsPermanent(err) || !strings.Contains(err.Error(), "check AZURE_STORAGE_SAS_TOKEN")) {
				t.Errorf("%s with a forged SAS = %v, want a Permanent error naming AZURE_STORAGE_SAS_TOKEN", op, err)
			}
			if endpoint == dead && storage.IsPermanent(err) {
				t.Errorf("%s against a dead endpoint = %v; a refused connection is worth retrying", op, err)
			}
		}
		cancel()
	}
}

// The suite's failed Puts fit in one block; this one fails after several
// blocks were staged, which must leave the old blob as it was and no new one,
// and a later Put of the same key must commit only its own blocks.
func TestFailedMultiBlockPutLeavesNothing(t *testing.T) {
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, "walnut")
	cfg := devConfig(az, "walnut", "p/")
	cfg.BlockSize = 1 << 20
	cfg.Concurrency = 2
	storagetest.FailedLargePut(t, newStore(t, cfg), 7<<20+5)
}

// A block failing at the service stops the upload without reading the
// rest of the source: a backup partition's source is a whole compression
// pipeline.
func TestFailedBlockStopsReading(t *testing.T) {
	az := testserver.StartAzurite(t)
	cfg := devConfig(az, "nosuchcontainer", "p/")
	cfg.BlockSize = 1 << 20
	s := newStore(t, cfg)
	src := &countingReader{r: storagetest.RandomData(5, 1<<30)}
	err := s.Put(t.Context(), "big", src, -1)
	if err == nil || !storage.IsPermanent(err) {
		t.Fatalf("Put into a missing container = %v, want a Permanent error", err)
	}
	if src.n > 16<<20 {
		t.Errorf("Put read %d MiB of the source after its first block failed", src.n>>20)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Memory for an upload of unknown size stays at the block buffers,
// whatever the object's size.
func TestLargeUnknownSizePutHasBoundedMemory(t *testing.T) {
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, "walnut")
	for _, size := range []int64{64 << 20, 256 << 20} {
		s := newStore(t, devConfig(az, "walnut", "p/"))
		storagetest.BoundedUnknownSizePut(t, s, size, 64<<20,
			fmt.Sprintf("blocks %d MiB x (%d+1)", azure.DefaultBlockSize>>20, azure.DefaultConcurrency))
	}
}

// wal-push's Puts, eight at once as its pool runs them, hold no block
// buffers: a segment's size is known, or measured from its rewindable
// source, and it goes up in one streamed Put Blob.
func TestWALPutsMemoryBounded(t *testing.T) {
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, "walnut")
	storagetest.BoundedWALPuts(t, newStore(t, devConfig(az, "walnut", "wal/")), 8)
}

func TestOpenFromEnv(t *testing.T) {
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, "walnut")
	env := map[string]string{
		"WABS_ACCOUNT_NAME":     testserver.AzuriteAccount,
		"WABS_ACCESS_KEY":       testserver.AzuriteKey,
		"WALNUT_AZURE_ENDPOINT": az.Endpoint + "/",
	}
	u, _ := url.Parse("wabs://walnut/from/env")
	s, err := azure.Open(t.Context(), u, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(t.Context(), "k", strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
	// The same blob seen through a connection string naming the endpoint.
	cs := map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountName=" + testserver.AzuriteAccount +
		";AccountKey=" + testserver.AzuriteKey + ";BlobEndpoint=" + az.Endpoint + ";"}
	u, _ = url.Parse("azure://walnut/from")
	s2, err := azure.Open(t.Context(), u, func(k string) string { return cs[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	info, err := s2.Stat(t.Context(), "env/k")
	if err != nil || info.Size != 1 {
		t.Errorf("Stat through the connection string = %+v, %v", info, err)
	}
}

// A service that stops answering fails every call after the I/O timeout,
// as a retryable error, instead of hanging.
func TestStalledServiceFailsEveryCall(t *testing.T) {
	cfg := azure.Config{
		Container: "walnut", Endpoint: "http://" + storagetest.SilentServer(t) + "/" + testserver.AzuriteAccount,
		Account: testserver.AzuriteAccount, Key: testserver.AzuriteKey, CredentialVar: "AZURE_STORAGE_KEY",
		IOTimeout: 500 * time.Millisecond, MaxRetries: 1,
	}
	s := newStore(t, cfg)
	start := time.Now()
	storagetest.WantRetryable(t, "against a stalled service", everyCall(t.Context(), s))
	if d := time.Since(start); d > time.Minute {
		t.Errorf("six calls against a stalled service took %s", d)
	}
}

// A Create too large for one Put Blob, from a source that cannot be
// rewound, goes up as blocks and is still conditional: Put Block List
// carries If-None-Match, so a taken name keeps its blob.
func TestStagedCreate(t *testing.T) {
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, "walnut")
	cfg := devConfig(az, "walnut", "p/")
	cfg.BlockSize = 1 << 20
	s := newStore(t, cfg)
	const size = 3<<20 + 7
	data, err := io.ReadAll(storagetest.RandomData(11, size))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(t.Context(), "big", struct{ io.Reader }{bytes.NewReader(data)}, -1); err != nil {
		t.Fatalf("staged Create of a new name: %v", err)
	}
	other := bytes.Clone(data)
	other[0] ^= 0xff
	err = s.Create(t.Context(), "big", struct{ io.Reader }{bytes.NewReader(other)}, -1)
	if !errors.Is(err, storage.ErrExists) || !storage.IsPermanent(err) {
		t.Fatalf("staged Create of a taken name = %v, want a Permanent ErrExists", err)
	}
	rc, err := s.Get(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("after a refused staged Create, the blob holds %d bytes that are not the first Create's", len(got))
	}
}
