package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/storage"
)

// maxSkew is how far the store's clock may be from the host's. Backups
// are ordered by finish time and retention by age; WAL age shows in
// object times.
const maxSkew = time.Minute

// checkStore writes, reads, stats, lists and deletes a probe object, and
// compares the time the store gives the object with the host's clock. It
// reports whether the store works.
func (c *checker) checkStore(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	host, _ := os.Hostname()
	token := make([]byte, 8)
	rand.Read(token)
	key := archive.ProbeKey(fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(token)))
	body := []byte("walnut check probe " + hex.EncodeToString(token) + "\n")
	fix := "check the prefix, the store's credentials and permissions (walnut needs to put, get, list and delete), and that the store is up"

	fail := func(op string, err error) bool {
		c.add("store", Fail, fmt.Sprintf("%s: %s %s: %v", c.o.Prefix, op, key, err), fix)
		c.add("clock", Fail, "not checked: the store does not work", "fix the store first")
		return false
	}
	before := time.Now()
	if err := c.o.Store.Put(ctx, key, bytes.NewReader(body), int64(len(body))); err != nil {
		return fail("put", err)
	}
	// From here the probe is removed whatever happens.
	deleted := false
	defer func() {
		if !deleted {
			c.o.Store.Delete(context.WithoutCancel(ctx), key)
		}
	}()
	rc, err := c.o.Store.Get(ctx, key)
	if err != nil {
		return fail("get", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return fail("get", err)
	}
	if !bytes.Equal(got, body) {
		return fail("get", fmt.Errorf("read back %d bytes that differ from the %d written", len(got), len(body)))
	}
	info, err := c.o.Store.Stat(ctx, key)
	if err != nil {
		return fail("stat", err)
	}
	after := time.Now()
	if info.Size != int64(len(body)) {
		return fail("stat", fmt.Errorf("size %d, wrote %d", info.Size, len(body)))
	}
	listed := false
	if err := c.o.Store.List(ctx, key, func(oi storage.ObjectInfo) error {
		listed = listed || oi.Key == key
		return nil
	}); err != nil {
		return fail("list", err)
	}
	if !listed {
		return fail("list", errors.New("the object just written is not listed"))
	}
	if err := c.o.Store.Delete(ctx, key); err != nil {
		return fail("delete", err)
	}
	deleted = true
	if _, err := c.o.Store.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		return fail("delete", fmt.Errorf("the object is still there after delete (stat: %v)", err))
	}
	c.add("store", OK, fmt.Sprintf("%s: put, get, stat, list and delete of %s work", c.o.Prefix, key), "")
	c.checkClock(info.ModTime, before, after)
	return true
}

// checkClock compares the time the store stamped the probe with the
// host's clock before the put and after the stat. Stores stamp objects
// to the second, hence the second of slack.
func (c *checker) checkClock(stamped, before, after time.Time) {
	if stamped.IsZero() {
		c.add("clock", Warn, "the store gives objects no modification time: the clocks cannot be compared", "")
		return
	}
	var skew time.Duration
	switch {
	case stamped.Before(before.Add(-time.Second)):
		skew = stamped.Sub(before)
	case stamped.After(after.Add(time.Second)):
		skew = stamped.Sub(after)
	}
	detail := fmt.Sprintf("the store's clock and this host's agree within %s", maxSkew)
	if skew != 0 {
		detail = fmt.Sprintf("the store's clock is %s from this host's", skew.Round(time.Second))
	}
	if skew > maxSkew || skew < -maxSkew {
		c.add("clock", Fail, detail, "synchronise this host's clock (NTP): backups are ordered by time, and delete before --time, --grace and WAL ages read the store's times")
		return
	}
	c.add("clock", OK, detail, "")
}
