#!/usr/bin/env bash
# Builds WAL-G's PostgreSQL binary from a source checkout into walnut's
# cache dir, where bench/run.sh finds it and measures WAL-G beside the
# other tools. scripts/setup.sh leaves it out on purpose: CI never needs
# it, and it is a large build (some 1,000 packages).
#
#   git clone --depth 1 --branch v3.0.9 https://github.com/wal-g/wal-g /tmp/wal-g
#   bench/build-walg.sh /tmp/wal-g
#
# A checkout, not `go install ...@v3.0.9`: WAL-G's module path has no /v3,
# so its v3 tags are not Go module versions that go install can resolve.
# Built without cgo (no brotli, lzo or libsodium; the bench uses zstd,
# which WAL-G takes from klauspost/compress as walnut does). WAL-G 3.x
# imports encoding/json/v2, hence GOEXPERIMENT=jsonv2 as in its Makefile.
# Where a Go module proxy refuses one of its modules (one here refused
# github.com/yandex-cloud/go-sdk/services/kms, which only WAL-G's KMS
# envelope encryption imports), point it at a checkout of that module in
# the source tree first: go mod edit -replace MODULE=/path/to/checkout.
set -euo pipefail

die() { echo "build-walg: $*" >&2; exit 1; }

src=${1:-}
[ -n "$src" ] || die "usage: bench/build-walg.sh WAL-G-SOURCE-DIR"
[ -f "$src/main/pg/main.go" ] || die "$src: not a WAL-G source tree (no main/pg/main.go)"
command -v go >/dev/null || die "go missing"
cache=${WALNUT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/walnut}
version=${WALG_VERSION:-$(git -C "$src" describe --tags 2>/dev/null || echo devel)}

mkdir -p "$cache/bin"
out=$cache/bin/wal-g
(cd "$src" && GOEXPERIMENT=jsonv2 CGO_ENABLED=0 go build -trimpath -o "$out.tmp" \
	-ldflags "-X github.com/wal-g/wal-g/cmd/pg.walgVersion=$version" ./main/pg)
mv "$out.tmp" "$out"
echo "build-walg: $out: $("$out" --version | head -1)"
