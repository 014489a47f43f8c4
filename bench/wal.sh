#!/usr/bin/env bash
# WAL benchmark: how fast a real PostgreSQL archives through walnut at
# several wal-push pool sizes, and how fast it replays about 1 GiB of WAL
# through wal-fetch with and without prefetch. Prints a markdown table.
#
#   bench/wal.sh                                  file:// archive in the work dir
#   BENCH_PREFIX=s3://bucket/wal bench/wal.sh     another archive (its AWS_* etc. from the environment)
#   BENCH_POOLS="1 4 8" BENCH_PREFETCH="0 8" BENCH_WAL_MB=1024 bench/wal.sh
#   BENCH_KEEP=1 bench/wal.sh                     keep the work directory
#
# With BENCH_PREFIX every run writes under its own sub-prefix, so the
# archive need not be empty. Needs PostgreSQL 15 server binaries and go;
# as root, the server and walnut run as the postgres user. A measurement,
# not a test: it asserts nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
pools=${BENCH_POOLS:-1 4 8}
prefetches=${BENCH_PREFETCH:-0 8}
wal_mb=${BENCH_WAL_MB:-1024}
push_segments=${BENCH_PUSH_SEGMENTS:-48}

die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

pgbin=${WALNUT_PG_BINDIR:-}
if [ -z "$pgbin" ]; then
	if [ -x /usr/lib/postgresql/15/bin/postgres ]; then
		pgbin=/usr/lib/postgresql/15/bin
	else
		pgbin=$(pg_config --bindir 2>/dev/null) || die "no PostgreSQL 15: install postgresql-15 or set WALNUT_PG_BINDIR"
	fi
fi
for tool in "$pgbin/initdb" "$pgbin/pg_ctl" "$pgbin/pgbench" "$pgbin/psql"; do
	[ -x "$tool" ] || die "$tool missing: install postgresql-15"
done
command -v go >/dev/null || die "go missing"

if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || die "user postgres missing (the postgresql-15 package creates it)"
	as_pg() { runuser -u postgres -- env "PATH=$PATH" "$@"; }
else
	as_pg() { "$@"; }
fi

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
work=$(mktemp -d /tmp/walnut-walbench.XXXXXX)
chmod 0755 "$work"
[ "$(id -u)" = 0 ] && chown postgres: "$work"
running=() # data directories of servers to stop on exit
cleanup() {
	set +e
	for d in "${running[@]}"; do
		as_pg "$pgbin/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
	done
	if [ -n "${BENCH_KEEP:-}" ]; then
		say "kept $work"
	else
		# Background prefetches end by themselves within seconds.
		sleep 2
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building walnut"
(cd "$repo" && go build -trimpath -o "$work/walnut" .)
walnut=$work/walnut
run_id=$(date +%s)
prefix_for() { # prefix_for NAME: a fresh archive for one part of the run
	if [ -n "${BENCH_PREFIX:-}" ]; then
		echo "${BENCH_PREFIX%/}/walbench-$run_id/$1"
	else
		echo "file://$work/archive-$1"
	fi
}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
psql_src() { as_pg "$pgbin/psql" -X -q -A -t -h "$work" -p "$port" -d postgres -c "$1"; }
ready_count() { find "$src/pg_wal/archive_status" -name '*.ready' | wc -l; }

port=$((55600 + RANDOM % 300))
src=$work/src
say "initdb"
as_pg "$pgbin/initdb" -D "$src" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >/dev/null
cat >>"$src/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$work'
port = $port
shared_buffers = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
archive_mode = on
archive_command = ''
EOF
as_pg "$pgbin/pg_ctl" -D "$src" -l "$work/src.log" -w start >/dev/null
running+=("$src")

# fill_wal MB writes about MB megabytes of WAL while archiving is held.
fill_wal() {
	local rows=$(($1 * 1024 * 1024 / 110))
	psql_src "CREATE TABLE IF NOT EXISTS filler (g int, v text); INSERT INTO filler SELECT g, md5(g::text) FROM generate_series(1, $rows) g; SELECT pg_switch_wal();" >/dev/null
}

# archive_until_empty PREFIX POOL: archive the held backlog and print the
# seconds it took.
archive_until_empty() {
	local t0 t1
	psql_src "ALTER SYSTEM SET archive_command = '$walnut --prefix $1 wal-push --pool-size $2 %p'" >/dev/null
	t0=$(now)
	psql_src "SELECT pg_reload_conf()" >/dev/null
	while [ "$(ready_count)" -gt 0 ]; do sleep 0.05; done
	t1=$(now)
	psql_src "ALTER SYSTEM SET archive_command = ''; " >/dev/null
	psql_src "SELECT pg_reload_conf()" >/dev/null
	secs "$t0" "$t1"
}

echo "| wal-push | segments | seconds | segments/s |"
echo "|---|---:|---:|---:|"
push_rows=()
for pool in $pools; do
	fill_wal $((push_segments * 16 - 16))
	n=$(ready_count)
	say "archiving $n segments with --pool-size $pool"
	s=$(archive_until_empty "$(prefix_for "push$pool")" "$pool")
	row="| --pool-size $pool | $n | $s | $(ratio "$n" "$s") |"
	echo "$row"
	push_rows+=("$row")
done

# Replay: a base backup, then about wal_mb of WAL after it.
replay_prefix=$(prefix_for replay)
say "base backup, then $wal_mb MB of WAL"
psql_src "ALTER SYSTEM SET archive_command = '$walnut --prefix $replay_prefix wal-push --pool-size 8 %p'" >/dev/null
psql_src "SELECT pg_reload_conf()" >/dev/null
start_lsn=$(psql_src "SELECT pg_current_wal_lsn()")
as_pg env PGHOST="$work" PGPORT="$port" PGUSER=postgres "$walnut" --prefix "$replay_prefix" backup-push "$src" >/dev/null 2>"$work/backup.log"
as_pg "$pgbin/pgbench" -h "$work" -p "$port" -i -s 20 -q postgres >/dev/null 2>&1
fill_wal $((wal_mb - 300))
as_pg "$pgbin/pgbench" -h "$work" -p "$port" -n -c 2 -T 20 postgres >/dev/null 2>&1
psql_src "SELECT pg_switch_wal()" >/dev/null
while [ "$(ready_count)" -gt 0 ]; do sleep 0.2; done
replay_mb=$(psql_src "SELECT round((pg_current_wal_lsn() - '$start_lsn'::pg_lsn) / 1048576)")
as_pg "$pgbin/pg_ctl" -D "$src" -m fast -w stop >/dev/null
running=()

echo
echo "| wal-fetch | WAL MB | seconds | MB/s |"
echo "|---|---:|---:|---:|"
for pf in $prefetches; do
	dest=$work/restore-$pf
	as_pg "$walnut" --prefix "$replay_prefix" backup-fetch "$dest" LATEST >/dev/null 2>&1
	rport=$((port + 1))
	t0=$(now)
	as_pg env WALNUT_PREFETCH="$pf" "$pgbin/pg_ctl" -D "$dest" -l "$work/restore-$pf.log" \
		-o "-c port=$rport -c unix_socket_directories=$work -c archive_mode=off" -t 3600 -w start >/dev/null
	running+=("$dest")
	until [ "$(as_pg "$pgbin/psql" -X -A -t -h "$work" -p "$rport" -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
		sleep 0.1
	done
	t1=$(now)
	s=$(secs "$t0" "$t1")
	echo "| WALNUT_PREFETCH=$pf | $replay_mb | $s | $(ratio "$replay_mb" "$s") |"
	as_pg "$pgbin/pg_ctl" -D "$dest" -m immediate -w stop >/dev/null
	running=()
	rm -rf "$dest"
done
echo
echo "archive: ${BENCH_PREFIX:-file://$work}; $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $load_before"
