package azure_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"runtime"
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

// everyCall runs each Store method once and returns their errors by name.
func everyCall(ctx context.Context, s storage.Store) map[string]error {
	errs := map[string]error{}
	errs["Put"] = s.Put(ctx, "wal/x", strings.NewReader("x"), 1)
	errs["PutStream"] = s.Put(ctx, "wal/y", io.LimitReader(randBytes(1), 5<<20), -1)
	rc, err := s.Get(ctx, "wal/x")
	if err == nil {
		rc.Close()
	}
	errs["Get"] = err
	_, errs["Stat"] = s.Stat(ctx, "wal/x")
	errs["List"] = s.List(ctx, "", func(storage.ObjectInfo) error { return nil })
	errs["Delete"] = s.Delete(ctx, "wal/x")
	return errs
}

func TestMissingContainerIsPermanent(t *testing.T) {
	az := testserver.StartAzurite(t)
	s := newStore(t, devConfig(az, "nosuchcontainer", "p/"))
	for op, err := range everyCall(t.Context(), s) {
		t.Logf("%s: %v", op, err)
		switch {
		case err == nil:
			t.Errorf("%s on a missing container succeeded", op)
		case errors.Is(err, storage.ErrNotFound):
			t.Errorf("%s on a missing container = %v, which is ErrNotFound: wal-fetch would end recovery early", op, err)
		case !storage.IsPermanent(err):
			t.Errorf("%s on a missing container = %v, want a Permanent error", op, err)
		case !strings.Contains(err.Error(), `container "nosuchcontainer" not found in storage account "devstoreaccount1"`):
			t.Errorf("%s error %q does not name the container and account", op, err)
		case strings.Contains(err.Error(), "\n"):
			t.Errorf("%s error is more than one line: %q", op, err)
		}
	}
}

const secretKey = "SFVOVEVSMi1kaXN0aW5jdGl2ZS1zZWNyZXQta2V5LWZvci13YWxudXQ=" // base64 of a distinctive marker

func TestWrongKeyIsPermanentAndSecret(t *testing.T) {
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, "walnut")
	cfg := devConfig(az, "walnut", "p/")
	cfg.Key = secretKey
	s := newStore(t, cfg)
	for op, err := range everyCall(t.Context(), s) {
		t.Logf("%s: %v", op, err)
		switch {
		case err == nil:
			t.Errorf("%s with a wrong key succeeded", op)
		case errors.Is(err, storage.ErrNotFound):
			t.Errorf("%s with a wrong key = %v, which is ErrNotFound", op, err)
		case !storage.IsPermanent(err):
			t.Errorf("%s with a wrong key = %v, want a Permanent error", op, err)
		case !strings.Contains(err.Error(), `access to container "walnut" in storage account "devstoreaccount1" denied`) ||
			!strings.Contains(err.Error(), "check AZURE_STORAGE_KEY"):
			t.Errorf("%s error %q does not name the container, account and variable", op, err)
		}
		if err != nil && strings.Contains(err.Error(), secretKey) {
			t.Errorf("%s error leaks the key: %v", op, err)
		}
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
			if strings.Contains(err.Error(), sig) || strings.Contains(err.Error(), "se=2099") {
				t.Errorf("%s error leaks the SAS token: %v", op, err)
			}
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

// failAfter yields n pseudo-random bytes, then fails.
type failAfter struct {
	r   io.Reader
	n   int
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// The suite's failed Puts fit in one block; this one fails after several
// blocks were staged, which must leave the old blob as it was and no new one.
func TestFailedMultiBlockPutLeavesNothing(t *testing.T) {
	az := testserver.StartAzurite(t)
	az.CreateContainer(t, "walnut")
	cfg := devConfig(az, "walnut", "p/")
	cfg.BlockSize = 1 << 20
	cfg.Concurrency = 2
	s := newStore(t, cfg)
	ctx := t.Context()
	if err := s.Put(ctx, "wal/seg", strings.NewReader("old content"), -1); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("compression pipeline broke")
	for _, key := range []string{"wal/seg", "wal/new"} {
		src := &failAfter{r: randBytes(3), n: 7<<20 + 5, err: boom}
		err := s.Put(ctx, key, src, -1)
		if !errors.Is(err, boom) {
			t.Errorf("Put %s from a failing reader = %v, want the reader's error", key, err)
		}
		if src.n != 0 {
			t.Errorf("Put %s stopped reading %d bytes before the failure", key, src.n)
		}
	}
	rc, err := s.Get(ctx, "wal/seg")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "old content" {
		t.Errorf("after failed Put, wal/seg holds %d bytes, want the old content", len(got))
	}
	if _, err := s.Stat(ctx, "wal/new"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat wal/new after a failed Put = %v, want ErrNotFound", err)
	}
	var keys []string
	s.List(ctx, "", func(info storage.ObjectInfo) error { keys = append(keys, info.Key); return nil })
	if strings.Join(keys, ",") != "wal/seg" {
		t.Errorf("List after failed Puts = %q, want only wal/seg", keys)
	}

	// A later Put of the same key commits only its own blocks.
	data := bytes.Repeat([]byte("0123456789abcdef"), 3<<16)
	if err := s.Put(ctx, "wal/new", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	rc, err = s.Get(ctx, "wal/new")
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Errorf("Put after a failed one stored %d bytes, want %d", len(got), len(data))
	}
}

// A block failing at the service stops the upload without reading the
// rest of the source: a backup partition's source is a whole compression
// pipeline.
func TestFailedBlockStopsReading(t *testing.T) {
	az := testserver.StartAzurite(t)
	cfg := devConfig(az, "nosuchcontainer", "p/")
	cfg.BlockSize = 1 << 20
	s := newStore(t, cfg)
	src := &countingReader{r: io.LimitReader(randBytes(5), 1<<30)}
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
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		peak := heapPeak(t, func() {
			if err := s.Put(t.Context(), "big", io.LimitReader(randBytes(7), size), -1); err != nil {
				t.Fatal(err)
			}
		})
		grew := int64(peak) - int64(base.HeapInuse)
		t.Logf("Put of %d MiB of unknown size: peak heap in use %.1f MiB above the %.1f MiB before (blocks %d MiB x (%d+1))",
			size>>20, float64(grew)/(1<<20), float64(base.HeapInuse)/(1<<20), azure.DefaultBlockSize>>20, azure.DefaultConcurrency)
		if limit := int64(64 << 20); grew > limit {
			t.Errorf("Put of %d MiB grew the heap by %d MiB, want under %d MiB", size>>20, grew>>20, limit>>20)
		}
		info, err := s.Stat(t.Context(), "big")
		if err != nil || info.Size != size {
			t.Errorf("Stat = %+v, %v; want size %d", info, err, size)
		}
	}
}

// heapPeak runs fn and returns the highest HeapInuse sampled meanwhile.
func heapPeak(t *testing.T, fn func()) uint64 {
	t.Helper()
	done := make(chan struct{})
	peakc := make(chan uint64)
	go func() {
		var peak uint64
		var m runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-done:
				peakc <- peak
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(done)
	return <-peakc
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

// randBytes is an endless deterministic stream of incompressible bytes.
func randBytes(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// silentServer accepts connections and never answers, like a host whose
// network went away mid-call.
func silentServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 64)
	t.Cleanup(func() {
		l.Close()
		for len(held) > 0 {
			(<-held).Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	return l.Addr().String()
}

// A service that stops answering fails every call after the I/O timeout,
// as a retryable error, instead of hanging.
func TestStalledServiceFailsEveryCall(t *testing.T) {
	cfg := azure.Config{
		Container: "walnut", Endpoint: "http://" + silentServer(t) + "/" + testserver.AzuriteAccount,
		Account: testserver.AzuriteAccount, Key: testserver.AzuriteKey, CredentialVar: "AZURE_STORAGE_KEY",
		IOTimeout: 500 * time.Millisecond, MaxRetries: 1,
	}
	s := newStore(t, cfg)
	start := time.Now()
	for op, err := range everyCall(t.Context(), s) {
		t.Logf("%s: %v", op, err)
		if err == nil || storage.IsPermanent(err) || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s against a stalled service = %v, want a retryable error", op, err)
		}
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("six calls against a stalled service took %s", d)
	}
}
