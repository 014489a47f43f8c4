#!/usr/bin/env bash
# Delta backups against the full backup they are taken over: pgbench at
# BENCH_DELTA_SCALE (200), a full backup, BENCH_DELTA_SECONDS (60) of
# pgbench writes, then backup-push --delta. Prints wall seconds, peak RSS
# and stored bytes of both, and the delta's share of the full backup's
# size and time (issue 21's goal: under 10% of the size, under half the
# time). A measurement, not a test: it asserts nothing.
#
#   bench/delta.sh
#   BENCH_DELTA_SCALE=50 BENCH_DELTA_SECONDS=20 bench/delta.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
scale=${BENCH_DELTA_SCALE:-200}
seconds=${BENCH_DELTA_SECONDS:-60}
pgbin=${WALNUT_PG_BINDIR:-/usr/lib/postgresql/15/bin}

die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }
for tool in "$pgbin/initdb" "$pgbin/pg_ctl" "$pgbin/pgbench" "$pgbin/psql"; do
	[ -x "$tool" ] || die "$tool missing: install postgresql-15 and postgresql-client-15"
done
[ -x /usr/bin/time ] || die "/usr/bin/time missing: apt-get install time"
if [ "$(id -u)" = 0 ]; then
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi

work=$(mktemp -d /tmp/walnut-bench-delta.XXXXXX)
chmod 0755 "$work"
[ "$(id -u)" = 0 ] && chown postgres: "$work"
data=$work/data
sock=$work
port=$((20000 + RANDOM % 20000))
cleanup() {
	as_pg "$pgbin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

say "building walnut"
(cd "$repo" && go build -trimpath -o "$work/walnut" .)
chmod 0755 "$work/walnut"
as_pg mkdir -p "$work/archive"
export WALNUT_PREFIX=file://$work/archive PGHOST=$sock PGPORT=$port PGUSER=postgres PGDATABASE=postgres

as_pg "$pgbin/initdb" -D "$data" -A trust >/dev/null
cat >>"$data/postgresql.conf" <<EOF
port = $port
unix_socket_directories = '$sock'
listen_addresses = ''
archive_mode = on
archive_command = 'WALNUT_PREFIX=$WALNUT_PREFIX $work/walnut wal-push %p'
max_wal_size = 4GB
EOF
as_pg "$pgbin/pg_ctl" -D "$data" -l "$work/log" -w start >/dev/null
say "pgbench -i -s $scale"
as_pg "$pgbin/pgbench" -i -q -s "$scale" >/dev/null 2>&1

# backup KIND ARGS...: one backup-push under GNU time; prints its name and
# records "seconds rss_kib" in $work/KIND.time.
backup() {
	local kind=$1
	shift
	as_pg env WALNUT_PREFIX="$WALNUT_PREFIX" PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER="$PGUSER" \
		/usr/bin/time -f '%e %M' -o "$work/$kind.time" "$work/walnut" backup-push "$@" "$data" 2>"$work/$kind.log"
}
stored() { du -sb "$work/archive/backups/$1" | cut -f1; }

say "full backup"
full=$(backup full)
say "pgbench -T $seconds"
as_pg "$pgbin/pgbench" -n -c 2 -T "$seconds" >/dev/null 2>&1
say "delta backup"
delta=$(backup delta --delta)
grep -q '"delta backup"\|msg="delta backup"' "$work/delta.log" || die "the second backup was not a delta: $(cat "$work/delta.log")"

read -r fs frss <"$work/full.time"
read -r ds drss <"$work/delta.time"
fb=$(stored "$full")
db=$(stored "$delta")
echo
echo "delta backup, pgbench scale $scale, ${seconds}s of pgbench -c 2 between (load before: $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| backup | seconds | peak RSS MiB | stored bytes |"
echo "|---|---|---|---|"
printf '| full %s | %s | %.1f | %s |\n' "$full" "$fs" "$(echo "$frss / 1024" | bc -l)" "$fb"
printf '| delta %s | %s | %.1f | %s |\n' "$delta" "$ds" "$(echo "$drss / 1024" | bc -l)" "$db"
printf '\ndelta / full: %.1f%% of the stored bytes, %.1f%% of the time\n' \
	"$(echo "100 * $db / $fb" | bc -l)" "$(echo "100 * $ds / $fs" | bc -l)"
