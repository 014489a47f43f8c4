package wal

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/walnut-pg/walnut/archive"
	"github.com/walnut-pg/walnut/compression"
	"github.com/walnut-pg/walnut/internal/fixture"
	"github.com/walnut-pg/walnut/storage"
	"github.com/walnut-pg/walnut/storage/mem"
)

// partialFile writes segName.partial with fill over the first n bytes and
// zeros after, as wal-receive assembles it.
func partialFile(t *testing.T, dir string, fill byte, n int) string {
	t.Helper()
	body := make([]byte, fixture.SegmentSize)
	copy(body, bytes.Repeat([]byte{fill}, n))
	p := filepath.Join(dir, segName+partialSuffix)
	fixture.WriteSegmentBody(t, p, fixture.Plain, body)
	return p
}

// wal-receive's uploads of a growing segment replace one another; wal-push
// of a .partial keeps the strict rule; wal-fetch serves the newest partial
// under the segment's name only while nothing later is archived, and the
// whole segment once it is; prefetch never takes a partial.
func TestPartialReplacedAndServedUntilSuperseded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mem.New()
	opts := func(p string) PushOptions {
		return PushOptions{Store: s, Codec: compression.Default(), Path: p, Log: slog.New(slog.DiscardHandler)}
	}
	fetch := func(name string, wholeOnly bool) ([]byte, error) {
		dest := filepath.Join(dir, "fetched")
		os.Remove(dest)
		err := Fetch(ctx, FetchOptions{Store: s, Name: name, Dest: dest, WholeOnly: wholeOnly})
		if err != nil {
			return nil, err
		}
		return os.ReadFile(dest)
	}

	first := partialFile(t, dir, 0x11, 100000)
	if _, err := archive.ReplacePartialWAL(ctx, opts(first)); err != nil {
		t.Fatal(err)
	}
	firstBody, _ := os.ReadFile(first)
	second := partialFile(t, dir, 0x22, 500000)
	secondBody, _ := os.ReadFile(second)
	if _, err := Push(ctx, opts(second)); !errors.Is(err, ErrConflict) {
		t.Fatalf("wal-push of other content under a stored .partial: %v, want a conflict", err)
	}
	res, err := archive.ReplacePartialWAL(ctx, opts(second))
	if err != nil || res.AlreadyStored {
		t.Fatalf("replace the partial: %+v %v", res, err)
	}
	if keys := fixture.Keys(t, s, "wal/"); len(keys) != 1 || keys[0] != res.Key {
		t.Fatalf("after the replacement the archive holds %v, want only %s", keys, res.Key)
	}
	if res, err := archive.ReplacePartialWAL(ctx, opts(second)); err != nil || !res.AlreadyStored {
		t.Fatalf("the same partial again: %+v %v", res, err)
	}
	got, err := fetch(segName, false)
	if err != nil || !bytes.Equal(got, secondBody) || bytes.Equal(got, firstBody) {
		t.Fatalf("wal-fetch %s with only a partial archived: %d bytes, %v; want the newest partial", segName, len(got), err)
	}
	if _, err := fetch(segName, true); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("prefetch of a segment with only a partial: %v, want not found", err)
	}

	// A later segment on the timeline: the partial is no longer the end.
	if _, err := Push(ctx, opts(fixture.Segment(t, dir, "000000010000000000000002", 0x33))); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(segName, false); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("wal-fetch of a partial with a later segment archived: %v, want not found", err)
	}
	// The whole segment supersedes its partials.
	whole := fixture.Segment(t, dir, segName, 0x44)
	wholeBody, _ := os.ReadFile(whole)
	if _, err := Push(ctx, opts(whole)); err != nil {
		t.Fatal(err)
	}
	if err := archive.DeletePartialWALs(ctx, s, segName); err != nil {
		t.Fatal(err)
	}
	if got, err := fetch(segName, false); err != nil || !bytes.Equal(got, wholeBody) {
		t.Fatalf("wal-fetch after the whole segment was stored: %v", err)
	}
	if keys := fixture.Keys(t, s, "wal/"+segName+partialSuffix); len(keys) != 0 {
		t.Fatalf("partials left after the whole segment: %v", keys)
	}
}
