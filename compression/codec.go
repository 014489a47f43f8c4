// Package compression names the stream codecs walnut stores objects with and
// finds the codec of an object from its key's extension, so a reader needs no
// configuration to decode what a writer chose.
package compression

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Codec compresses and decompresses one stream. Every format written is the
// standard framed format of its command-line tool, so an operator without
// walnut can restore with e.g. `zstd -d | tar x`.
type Codec interface {
	// Name is the codec's name as Parse accepts it, without a level.
	Name() string
	// Extension is what a key written with this codec ends with, "" for none.
	Extension() string
	// NewWriter compresses into w. Close flushes and never closes w.
	NewWriter(w io.Writer) (io.WriteCloser, error)
	// NewReader decompresses r. Close releases resources and never closes r.
	NewReader(r io.Reader) (io.ReadCloser, error)
}

// codecInfo is one registered codec: how to build it from an optional level.
type codecInfo struct {
	name     string
	ext      string
	levels   string // human description of valid levels, "" if none accepted
	minLevel int
	maxLevel int
	build    func(level int, explicit bool) Codec
}

// registry is in the order Names reports, the default first.
var registry = []codecInfo{
	{name: "zstd", ext: ".zst", levels: "1-22", minLevel: 1, maxLevel: 22,
		build: func(l int, explicit bool) Codec {
			if !explicit {
				l = 1
			}
			return newZstd(l)
		}},
	{name: "lz4", ext: ".lz4", levels: "1-9", minLevel: 1, maxLevel: 9,
		build: func(l int, explicit bool) Codec {
			if !explicit {
				l = 1
			}
			return lz4Codec{level: l}
		}},
	{name: "s2", ext: ".s2", build: func(int, bool) Codec { return s2Codec{} }},
	{name: "snappy", ext: ".sz", build: func(int, bool) Codec { return snappyCodec{} }},
	{name: "gzip", ext: ".gz", levels: "1-9", minLevel: 1, maxLevel: 9,
		build: func(l int, explicit bool) Codec {
			if !explicit {
				l = defaultGzipLevel
			}
			return gzipCodec{level: l}
		}},
	{name: "none", ext: "", build: func(int, bool) Codec { return noneCodec{} }},
}

// Names lists the valid codec names, the default first.
func Names() []string {
	names := make([]string, len(registry))
	for i, c := range registry {
		names[i] = c.name
	}
	return names
}

// Default is zstd at its fastest level: a backup is bound by reading files
// plus compressing them, and level 1 keeps compression off the critical path
// while still shrinking PostgreSQL pages well.
func Default() Codec { return newZstd(1) }

// Parse turns a codec spec, "name" or "name:level", into a Codec. An empty
// spec is Default().
func Parse(spec string) (Codec, error) {
	s := strings.ToLower(strings.TrimSpace(spec))
	if s == "" {
		return Default(), nil
	}
	name, levelText, hasLevel := strings.Cut(s, ":")
	for _, c := range registry {
		if c.name != name {
			continue
		}
		if !hasLevel {
			return c.build(0, false), nil
		}
		if c.levels == "" {
			return nil, fmt.Errorf("compression %q: %s takes no level", spec, c.name)
		}
		level, err := strconv.Atoi(levelText)
		if err != nil || level < c.minLevel || level > c.maxLevel {
			return nil, fmt.Errorf("compression %q: %s level must be %s", spec, c.name, c.levels)
		}
		return c.build(level, true), nil
	}
	return nil, fmt.Errorf("compression %q: unknown codec; valid: %s (optionally name:level, e.g. zstd:3)",
		spec, strings.Join(Names(), ", "))
}

// ForKey finds the codec of a stored object by its key's last extension and
// returns the key without that extension. A key with no codec extension is
// stored uncompressed: the "none" codec and the key unchanged.
func ForKey(key string) (c Codec, base string) {
	for _, info := range registry {
		if info.ext != "" && strings.HasSuffix(key, info.ext) && len(key) > len(info.ext) {
			return info.build(0, false), strings.TrimSuffix(key, info.ext)
		}
	}
	return noneCodec{}, key
}

// noneCodec stores bytes as they are; used for keys without an extension and
// for data that is already compressed.
type noneCodec struct{}

func (noneCodec) Name() string      { return "none" }
func (noneCodec) Extension() string { return "" }
func (noneCodec) String() string    { return "none" }

func (noneCodec) NewWriter(w io.Writer) (io.WriteCloser, error) { return nopWriteCloser{w}, nil }
func (noneCodec) NewReader(r io.Reader) (io.ReadCloser, error)  { return io.NopCloser(r), nil }

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
