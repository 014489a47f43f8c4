// Command mkdeb builds walnut's Debian package with nfpm. It is its own
// module so that nfpm and its dependencies never enter walnut's module
// graph or binary; scripts/release.sh runs it.
//
// The package's layout is this file's contents list. It holds the binary,
// the man page and completion scripts the binary printed (walnut man,
// walnut completion bash|zsh), the systemd units and an example envdir.
// It creates no users, ships no files under /etc and has no maintainer
// scripts, so installing it starts nothing.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

type options struct {
	version, arch string
	bin, gen, src string
	out           string
	mtime         time.Time
}

func main() {
	var o options
	var epoch string
	flag.StringVar(&o.version, "version", "", "Debian package `VERSION` (scripts/version.sh deb)")
	flag.StringVar(&o.arch, "arch", "", "Debian `ARCH`itecture of the binary: amd64 or arm64")
	flag.StringVar(&o.bin, "bin", "", "the walnut `BINARY` to package")
	flag.StringVar(&o.gen, "gen", "", "`DIR` holding walnut.1, walnut.bash and walnut.zsh as walnut printed them")
	flag.StringVar(&o.src, "src", "", "the walnut source `DIR` (packaging/ and README.md)")
	flag.StringVar(&o.out, "o", "", "the .deb `FILE` to write")
	flag.StringVar(&epoch, "mtime", os.Getenv("SOURCE_DATE_EPOCH"), "file times in the package, Unix `SECONDS` (default $SOURCE_DATE_EPOCH)")
	flag.Parse()
	if o.version == "" || o.arch == "" || o.bin == "" || o.gen == "" || o.src == "" || o.out == "" || epoch == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "mkdeb: -version, -arch, -bin, -gen, -src, -o and -mtime (or SOURCE_DATE_EPOCH) are all required")
		os.Exit(2)
	}
	secs, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkdeb: -mtime %q: want Unix seconds\n", epoch)
		os.Exit(2)
	}
	o.mtime = time.Unix(secs, 0).UTC()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	tmp, err := os.MkdirTemp("", "mkdeb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// Debian compresses man pages; gzip's header then holds no name and
	// no time, so the bytes depend on the page alone.
	man := filepath.Join(tmp, "walnut.1.gz")
	if err := gzipFile(filepath.Join(o.gen, "walnut.1"), man); err != nil {
		return err
	}

	pkg := filepath.Join(o.src, "packaging")
	contents := files.Contents{
		file(o.bin, "/usr/bin/walnut", 0o755),
		file(man, "/usr/share/man/man1/walnut.1.gz", 0o644),
		file(filepath.Join(o.gen, "walnut.bash"), "/usr/share/bash-completion/completions/walnut", 0o644),
		file(filepath.Join(o.gen, "walnut.zsh"), "/usr/share/zsh/vendor-completions/_walnut", 0o644),
		file(filepath.Join(o.src, "README.md"), "/usr/share/doc/walnut/README.md", 0o644),
		file(filepath.Join(pkg, "README.Debian"), "/usr/share/doc/walnut/README.Debian", 0o644),
	}
	for _, unit := range []string{
		"walnut-backup.service", "walnut-backup.timer",
		"walnut-drill.service", "walnut-drill.timer",
		"walnut-wal-receive.service",
	} {
		contents = append(contents, file(filepath.Join(pkg, "systemd", unit), "/usr/lib/systemd/system/"+unit, 0o644))
	}
	envs, err := os.ReadDir(filepath.Join(pkg, "env"))
	if err != nil {
		return err
	}
	for _, e := range envs {
		contents = append(contents, file(filepath.Join(pkg, "env", e.Name()), "/usr/share/doc/walnut/examples/env/"+e.Name(), 0o644))
	}

	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "walnut",
		Arch:          o.arch,
		Platform:      "linux",
		Version:       o.version,
		VersionSchema: "none", // o.version is already a Debian version
		Section:       "database",
		Priority:      "optional",
		Maintainer:    "walnut developers <walnut@walnut-pg.invalid>",
		Homepage:      "https://github.com/walnut-pg/walnut",
		Description: "continuous archiving and point-in-time recovery for PostgreSQL\n" +
			"walnut archives PostgreSQL's WAL (archive_command, restore_command) and\n" +
			"base backups into an object store (S3, Azure, Swift, GCS or a directory),\n" +
			"compressed and optionally encrypted, and restores them to any point in\n" +
			"time. One static binary, in the mould of WAL-E.",
		MTime: o.mtime,
		Overridables: nfpm.Overridables{
			Contents:   contents,
			Recommends: []string{"postgresql-client"},
		},
	})
	if err := info.Validate(); err != nil {
		return fmt.Errorf("package contents: %w", err)
	}
	packager, err := nfpm.Get("deb")
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := packager.Package(info, &buf); err != nil {
		return fmt.Errorf("build %s: %w", o.out, err)
	}
	// Written whole beside its name and renamed: a failed build leaves
	// no half package behind.
	part := o.out + ".part"
	if err := os.WriteFile(part, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(part, o.out)
}

func file(src, dst string, mode os.FileMode) *files.Content {
	return &files.Content{
		Source:      src,
		Destination: dst,
		FileInfo:    &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode},
	}
}

func gzipFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(dst, out.Bytes(), 0o644)
}
