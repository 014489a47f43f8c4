#!/usr/bin/env bash
# walnut status on a large archive: wall time and peak RSS of the binary
# (GNU time) for `walnut status --no-server` on a generated archive of
# BENCH_WAL_OBJECTS WAL segments (default 100000) and 30 backups. Prints a
# markdown row per run. A measurement, not a test: it asserts nothing.
#
#   bench/status.sh                      file:// archive (sparse files written straight
#                                        into the directory; status reads names and sizes)
#   BENCH_MINIO=1 bench/status.sh        also a MinIO started here, filled through walnut's
#                                        own S3 store by bench/statusgen (takes minutes)
#   BENCH_WAL_OBJECTS=300000 BENCH_REPEAT=5 bench/status.sh
#   BENCH_KEEP=1 bench/status.sh         keep the work directory
#
# Needs go, GNU time (/usr/bin/time), awk, truncate; with BENCH_MINIO,
# curl and minio (scripts/setup.sh installs it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
objects=${BENCH_WAL_OBJECTS:-100000}
repeat=${BENCH_REPEAT:-3}
backups=30

die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) missing: apt-get install time"
work=$(mktemp -d /tmp/walnut-bench-status-XXXXXX)
helpers=()
cleanup() {
	set +e
	for p in "${helpers[@]}"; do kill "$p" 2>/dev/null; done
	if [ -n "${BENCH_KEEP:-}" ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building walnut and statusgen"
(cd "$repo" && go build -trimpath -o "$work/walnut" . && go build -o "$work/statusgen" ./bench/statusgen)

rows=()
# measure NAME ENV...: run status REPEAT times against the prefix in ENV.
measure() {
	local name=$1 r code wall rss
	shift
	for r in $(seq 1 "$repeat"); do
		set +e
		env "$@" /usr/bin/time -o "$work/time" -f '%e %M' "$work/walnut" status --no-server --json >"$work/out.json"
		code=$?
		set -e
		read -r wall rss <"$work/time"
		grep -q "\"objects\": $objects," "$work/out.json" || die "$name: status did not count $objects WAL objects: $(head -c 600 "$work/out.json")"
		rows+=("$(printf '| %s | %d | %d | %s | %.1f | %d |' "$name" "$r" "$objects" "$wall" "$(echo "$rss / 1024" | bc -l)" "$code")")
	done
}

arch=$work/archive
mkdir -p "$arch/wal" "$arch/backups"
say "generating $objects WAL objects and $backups backups in $arch"
printf '{"format": 1, "system_identifier": "7301234567890123456", "pg_version": 150000, "wal_segment_size": 16777216}\n' >"$arch/walnut.json"
# Segment n of timeline 1 with 16 MiB segments: 256 segments per xlogid.
awk -v n="$objects" 'BEGIN { for (i = 1; i <= n; i++) printf "wal/00000001%08X%08X-%016x.zst\n", int(i / 256), i % 256, i }' |
	(cd "$arch" && xargs truncate -s 4M)
now=$(date -u +%s)
for i in $(seq 1 $backups); do
	name=$(printf 'base_00000001%08X%08X_00000028' $(((i * 3000) / 256)) $(((i * 3000) % 256)))
	mkdir -p "$arch/backups/$name"
	for p in 1 2 3; do truncate -s 1G "$arch/backups/$name/part_000$p.tar.zst"; done
	finish=$(date -u -d "@$((now - (backups - i) * 86400 - 3600))" +%Y-%m-%dT%H:%M:%SZ)
	printf '{"format": 1, "name": "%s", "finish_time": "%s", "stored_size_bytes": 3221225472, "expanded_size_bytes": 9663676416, "permanent": %s}\n' \
		"$name" "$finish" "$([ "$i" = 1 ] && echo true || echo false)" >"$arch/backups/$name.json"
done
measure file:// "WALNUT_PREFIX=file://$arch"

if [ -n "${BENCH_MINIO:-}" ]; then
	minio=""
	for d in $(echo "$PATH" | tr : ' ') "$(go env GOPATH)/bin" "${WALNUT_CACHE_DIR:-$HOME/.cache/walnut}/bin"; do
		[ -x "$d/minio" ] && minio=$d/minio && break
	done
	[ -n "$minio" ] || die "minio missing: run scripts/setup.sh"
	port=$(shuf -i 20000-30000 -n 1)
	secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	mkdir -p "$work/minio"
	MINIO_ROOT_USER=statusbench MINIO_ROOT_PASSWORD=$secret MINIO_BROWSER=off MINIO_UPDATE=off HOME=$work/minio \
		"$minio" server "$work/minio/data" --address "127.0.0.1:$port" --console-address "127.0.0.1:$((port + 1))" --quiet \
		>"$work/minio.log" 2>&1 &
	helpers+=($!)
	for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/minio/health/ready" && break; sleep 0.1; done
	printf 'user = "statusbench:%s"\n' "$secret" >"$work/curl.conf"
	curl -sf -K "$work/curl.conf" --aws-sigv4 "aws:amz:us-east-1:s3" -X PUT "http://127.0.0.1:$port/bench" >/dev/null ||
		die "cannot create the bucket in MinIO (see $work/minio.log)"
	s3env=("WALNUT_PREFIX=s3://bench/archive" "AWS_ENDPOINT_URL=http://127.0.0.1:$port" "AWS_ACCESS_KEY_ID=statusbench"
		"AWS_SECRET_ACCESS_KEY=$secret" "AWS_REGION=us-east-1" "WALNUT_S3_FORCE_PATH_STYLE=true")
	say "filling MinIO with $objects WAL objects"
	start=$(date +%s)
	env "${s3env[@]}" "$work/statusgen" -prefix s3://bench/archive -n "$objects"
	say "filled in $(($(date +%s) - start)) s"
	measure "MinIO (s3://)" "${s3env[@]}"
fi

echo
echo "| store | run | WAL objects | wall s | peak RSS MiB | exit |"
echo "|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "load average before/after: $(cut -d' ' -f1-3 /proc/loadavg)"
