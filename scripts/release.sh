#!/usr/bin/env bash
# Build walnut's release into OUT (default dist): static binaries
# walnut-linux-ARCH for each of ARCHES (default "amd64 arm64"), with DEB=1
# also their Debian packages (packaging/mkdeb), and SHA256SUMS over them.
#
# Reproducible: the same commit and Go version give the same bytes on any
# machine, in any directory. No cgo, -trimpath, no VCS stamping (a
# machine's GOFLAGS may turn it on or off: the version and commit come from
# git through -ldflags instead), the CPU baselines pinned, and the
# packages' file times are the commit's time (SOURCE_DATE_EPOCH).
# VERSION, COMMIT and SOURCE_DATE_EPOCH may be given, e.g. to build from a
# tarball.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

OUT=${OUT:-dist}
ARCHES=${ARCHES:-amd64 arm64}
VERSION=${VERSION:-$(scripts/version.sh)}
COMMIT=${COMMIT:-$(git rev-parse --short=12 HEAD)}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
export SOURCE_DATE_EPOCH
pkg=github.com/walnut-pg/walnut

mkdir -p "$OUT"
out=$(cd "$OUT" && pwd)
rm -f "$out"/walnut-linux-* "$out"/walnut_*.deb "$out/SHA256SUMS"
for arch in $ARCHES; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOAMD64=v1 GOARM64=v8.0 \
		go build -trimpath -buildvcs=false \
		-ldflags "-X $pkg/commands.version=$VERSION -X $pkg/commands.commit=$COMMIT" \
		-o "$out/walnut-linux-$arch" .
done

if [[ ${DEB:-} == 1 ]]; then
	# The man page and completion scripts are printed by walnut itself, so
	# they come from the same definitions as `walnut help`; any walnut of
	# this source prints the same, so run one this machine can.
	gen=$(mktemp -d)
	trap 'rm -rf "$gen"' EXIT
	host=$(go env GOHOSTARCH)
	walnut=$out/walnut-linux-$host
	if [[ ! -x $walnut ]]; then
		walnut=$gen/walnut
		CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$walnut" .
	fi
	"$walnut" man >"$gen/walnut.1"
	"$walnut" completion bash >"$gen/walnut.bash"
	"$walnut" completion zsh >"$gen/walnut.zsh"
	debversion=$(VERSION=$VERSION scripts/version.sh deb)
	for arch in $ARCHES; do
		go run -C packaging/mkdeb . -version "$debversion" -arch "$arch" \
			-bin "$out/walnut-linux-$arch" -gen "$gen" -src "$src" \
			-o "$out/walnut_${debversion}_$arch.deb"
	done
fi

(
	cd "$out"
	shopt -s nullglob
	LC_ALL=C sha256sum walnut-linux-* walnut_*.deb >SHA256SUMS
)
echo "release: $VERSION in $OUT"
