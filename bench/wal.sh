#!/usr/bin/env bash
# WAL benchmark: how fast a real PostgreSQL archives through walnut at
# several wal-push pool sizes, and how fast it replays about 1 GiB of WAL
# through wal-fetch with and without prefetch. Prints a markdown table.
#
#   bench/wal.sh                                  file:// archive in the work dir
#   BENCH_PREFIX=s3://bucket/wal bench/wal.sh     another archive (its AWS_* etc. from the environment)
#   BENCH_POOLS="1 4 8" BENCH_PREFETCH="0 8" BENCH_WAL_MB=1024 bench/wal.sh
#   BENCH_REPEAT=3 bench/wal.sh                   best of 3 runs (a busy machine is noisy)
#   BENCH_KEEPUP_SECS=60 bench/wal.sh             pgbench at full speed with archiving on (0: skip)
#   BENCH_MINIO=1 bench/wal.sh                    a MinIO started here, behind toxiproxy adding
#                                                 BENCH_LATENCY_MS (default 20) to every response
#   BENCH_KEEP=1 bench/wal.sh                     keep the work directory
#   BENCH_BULKLOAD_SCALE=200 BENCH_MINIO=1 bench/wal.sh
#                                                 only this: pgbench -i at that scale on a fresh
#                                                 cluster per pool size (BENCH_BULKLOAD_POOLS,
#                                                 default "4 8"), archiving from its first segment;
#                                                 how far the archiver falls behind, how long it
#                                                 takes to catch up, wal-push's CPU, MB/s to the store;
#                                                 BENCH_BULKLOAD_MODES="live held" (held: archiving
#                                                 off during the load, then the backlog drains)
#
# With GNU time at /usr/bin/time, each archive_command is run under it and
# the table shows the largest peak RSS of a wal-push per pool size (e2e's
# BenchmarkWALPushPeakRSS measures it for every store and codec).
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
helpers=() # pids of MinIO and toxiproxy
cleanup() {
	set +e
	for p in "${helpers[@]}"; do
		kill "$p" 2>/dev/null
	done
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

# find_bin NAME...: the first of NAME... on PATH, in the Go bin directory or
# in walnut's cache, where scripts/setup.sh installs servers.
find_bin() {
	local n d
	for n in "$@"; do
		for d in $(echo "$PATH" | tr : ' ') "$(go env GOPATH)/bin" "${WALNUT_CACHE_DIR:-$HOME/.cache/walnut}/bin"; do
			if [ -x "$d/$n" ]; then
				echo "$d/$n"
				return
			fi
		done
	done
	return 1
}

wait_http() { # wait_http URL: until it answers
	local i
	for i in $(seq 1 300); do
		curl -sf -o /dev/null "$1" && return 0
		sleep 0.1
	done
	die "$1 does not answer"
}

# free_port FROM: a TCP port at 127.0.0.1 from FROM on that nobody listens on.
free_port() {
	local p
	for p in $(seq "$1" $(($1 + 400))); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port from $1"
}

if [ -n "${BENCH_MINIO:-}" ]; then
	minio=$(find_bin minio) || die "minio missing: run scripts/setup.sh"
	toxiproxy=$(find_bin toxiproxy-server) || die "toxiproxy-server missing: run scripts/setup.sh"
	latency=${BENCH_LATENCY_MS:-20}
	mport=$(free_port 56000) cport=$(free_port 56500) tport=$(free_port 57000) pport=$(free_port 57500)
	secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	mkdir -p "$work/minio"
	MINIO_ROOT_USER=walbench MINIO_ROOT_PASSWORD=$secret MINIO_BROWSER=off MINIO_UPDATE=off HOME=$work/minio \
		"$minio" server "$work/minio/data" --address "127.0.0.1:$mport" --console-address "127.0.0.1:$cport" --quiet \
		>"$work/minio.log" 2>&1 &
	helpers+=($!)
	"$toxiproxy" -host 127.0.0.1 -port "$tport" >"$work/toxiproxy.log" 2>&1 &
	helpers+=($!)
	wait_http "http://127.0.0.1:$mport/minio/health/ready"
	wait_http "http://127.0.0.1:$tport/version"
	# The secret goes to curl in a file, never on a command line.
	printf 'user = "walbench:%s"\n' "$secret" >"$work/curl.conf"
	curl -sf -K "$work/curl.conf" --aws-sigv4 "aws:amz:us-east-1:s3" -X PUT "http://127.0.0.1:$mport/walbench" >/dev/null ||
		die "cannot create the bucket in MinIO (see $work/minio.log)"
	curl -sf -X POST "http://127.0.0.1:$tport/proxies" \
		-d "{\"name\":\"minio\",\"listen\":\"127.0.0.1:$pport\",\"upstream\":\"127.0.0.1:$mport\",\"enabled\":true}" >/dev/null ||
		die "toxiproxy cannot listen on 127.0.0.1:$pport (see $work/toxiproxy.log)"
	curl -sf -X POST "http://127.0.0.1:$tport/proxies/minio/toxics" \
		-d "{\"name\":\"latency\",\"type\":\"latency\",\"stream\":\"downstream\",\"toxicity\":1,\"attributes\":{\"latency\":$latency}}" >/dev/null ||
		die "cannot add the latency toxic (see $work/toxiproxy.log)"
	export AWS_ACCESS_KEY_ID=walbench AWS_SECRET_ACCESS_KEY=$secret AWS_REGION=us-east-1
	export AWS_ENDPOINT_URL=http://127.0.0.1:$pport WALNUT_S3_FORCE_PATH_STYLE=true
	BENCH_PREFIX=s3://walbench
	say "MinIO at 127.0.0.1:$mport behind toxiproxy 127.0.0.1:$pport adding ${latency} ms"
fi
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

# Bulk load (BENCH_BULKLOAD_SCALE): for each pool size, a fresh cluster
# archiving from its first segment, `pgbench -i` at that scale, and a
# sample each second of how far pg_stat_archiver is behind the WAL, of
# wal-push's CPU (GNU time, per call) and of the bytes sent to the store.
# Only this runs when it is set.
bulk_scale=${BENCH_BULKLOAD_SCALE:-}
if [ -n "$bulk_scale" ]; then
	[ -x /usr/bin/time ] || die "the bulk-load mode needs GNU time at /usr/bin/time"
	bulk_pools=${BENCH_BULKLOAD_POOLS:-4 8}
	# live: archiving runs during the load, as in production. held:
	# archive_command is empty during the load and set once it ends, so
	# the backlog drains with the machine to itself: the pool's own limit.
	bulk_modes=${BENCH_BULKLOAD_MODES:-live held}
	minio_pid=${helpers[0]:-} proxy_pid=${helpers[1]:-}
	# proc_ticks PID: user + system clock ticks of a process, 0 if gone.
	proc_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
	# The proxy reads every request from walnut and every (small) answer
	# from MinIO: its bytes read are what reached the store, near enough.
	proxy_bytes() { [ -n "$proxy_pid" ] && awk '/^rchar/ { print $2 }' "/proc/$proxy_pid/io" 2>/dev/null || echo 0; }
	# lag_sql: WAL bytes written so far, archived_count, bytes of WAL up to
	# the end of last_archived_wal, and the whole segments between it and
	# the current one (the lag pg_stat_archiver shows).
	lag_sql="WITH a AS (SELECT last_archived_wal w, archived_count c FROM pg_stat_archiver),
		s AS (SELECT setting::numeric z FROM pg_settings WHERE name = 'wal_segment_size'),
		e AS (SELECT pg_current_wal_lsn() - '0/0'::pg_lsn cur, c, coalesce(
			('x' || lpad(substr(w, 9, 8), 16, '0'))::bit(64)::bigint * 4294967296::numeric +
			(('x' || lpad(substr(w, 17, 8), 16, '0'))::bit(64)::bigint + 1) * z, 0) done, z FROM a, s)
		SELECT cur, c, done, floor(cur / z) - done / z FROM e"
	echo "| pool, archiving | load s | WAL MB | peak lag: segments | MB | catch-up s | segments/s: during load | after | overall | CPU s/segment | wal-push share of 2 cores | MinIO share | machine busy %: load / after | MB/s to store | archiver time: storing calls (count) / marker calls (count) / between |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"
	for run in $(for p in $bulk_pools; do for m in $bulk_modes; do echo "$p-$m"; done; done); do
		pool=${run%-*} mode=${run#*-}
		case $mode in live | held) ;; *) die "BENCH_BULKLOAD_MODES: $mode: want live or held" ;; esac
		src=$work/bulk$run port=$(free_port 55600)
		calls=$work/calls-$run samples=$work/samples-$run
		: >"$calls"
		[ "$(id -u)" = 0 ] && chown postgres: "$calls"
		# The wrapper records per call whether a marker was there before
		# it started (a call the pool answered ahead), wall, user and
		# system seconds; it forks nothing but GNU time, so that its own
		# cost stays a few milliseconds a call.
		cat >"$work/push-$run.sh" <<PUSH
#!/bin/sh
m=0
[ -e "\${1%/*}/.walnut/archived/\${1##*/}" ] && m=1
exec /usr/bin/time -f "\$m %e %U %S" -a -o $calls $walnut --prefix $(prefix_for "bulk$run") wal-push --pool-size $pool "\$1"
PUSH
		chmod 0755 "$work/push-$run.sh"
		as_pg "$pgbin/initdb" -D "$src" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >/dev/null
		cat >>"$src/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$work'
port = $port
shared_buffers = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
archive_mode = on
archive_command = '$work/push-$run.sh %p'
CONF
		as_pg "$pgbin/pg_ctl" -D "$src" -l "$work/bulk$run.log" -w start >/dev/null
		running=("$src")
		psql_src "SELECT pg_switch_wal()" >/dev/null
		until [ "$(psql_src "SELECT archived_count > 0 FROM pg_stat_archiver")" = t ] && [ "$(ready_count)" = 0 ]; do sleep 0.2; done
		: >"$calls"
		if [ "$mode" = held ]; then
			psql_src "ALTER SYSTEM SET archive_command = ''" >/dev/null
			psql_src "SELECT pg_reload_conf()" >/dev/null
		fi
		say "pgbench -i -s $bulk_scale with wal-push --pool-size $pool ($mode)"
		t0=$(now)
		rm -f "$work/load-end"
		(
			as_pg "$pgbin/pgbench" -h "$work" -p "$port" -i -s "$bulk_scale" -q postgres >"$work/pgbench-i-$run.out" 2>&1
			rc=$?
			now >"$work/load-end"
			exit $rc
		) &
		bench_pid=$!
		target="" t_load="" t_done=""
		: >"$samples"
		while :; do
			IFS='|' read -r cur count done lag < <(psql_src "$lag_sql")
			phase=load
			[ -n "$t_load" ] && phase=after
			cpu=$(awk '{ s += $3 + $4 } END { printf "%.2f", s }' "$calls")
			echo "$(now) $phase $cur $count $done $lag $(ready_count) $cpu $(proxy_bytes) $(proc_ticks "${minio_pid:-0}") $(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat)" >>"$samples"
			if [ -z "$t_load" ] && ! kill -0 "$bench_pid" 2>/dev/null; then
				wait "$bench_pid" || die "pgbench -i failed: $(tail -3 "$work/pgbench-i-$run.out")"
				# The load's last segment is archived once it is switched.
				t_load=$(cat "$work/load-end")
				if [ "$mode" = held ]; then
					psql_src "ALTER SYSTEM SET archive_command = '$work/push-$run.sh %p'" >/dev/null
					psql_src "SELECT pg_reload_conf()" >/dev/null
				fi
				target=$(psql_src "SELECT pg_switch_wal() - '0/0'::pg_lsn")
			fi
			if [ -n "$target" ] && awk -v d="$done" -v t="$target" 'BEGIN { exit !(d >= t) }'; then
				t_done=$(now)
				break
			fi
			sleep 1
		done
		# One line of the table from the samples and the calls.
		awk -v pool="$pool, $mode" -v held="$([ "$mode" = held ] && echo 1)" -v t0="$t0" -v tl="$t_load" -v td="$t_done" -v cpus="$(nproc)" -v hz="$(getconf CLK_TCK)" -v calls="$calls" '
		NR == 1 { c0 = $4; b0 = $9; m0 = $10; busy0 = $11; tot0 = $12; w0 = $3 }
		{ if ($6 > plag) plag = $6; if ($3 - $5 > pbytes) pbytes = $3 - $5 }
		$2 == "load" { cl = $4; bl = $11; tl_tot = $12; bb = $9; ml = $10 }
		{ cl_end = $4; w = $3 - w0; b1 = $9; m1 = $10; busy1 = $11; tot1 = $12 }
		END {
			while ((getline line < calls) > 0) {
				split(line, f, " "); n++; cpu += f[3] + f[4]
				if (f[1] == 1) { mark += f[2]; nm++ } else { store += f[2]; ns++ }
			}
			span = td - t0; load = tl - t0; after = td - tl; segs = cl_end - c0
			# Shares and rates are over the time archiving ran: all of it,
			# or only the drain after a held load.
			win = span
			if (held) { win = after; b0 = bb; m0 = ml }
			printf "| %s | %.1f | %.0f | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %.3f | %.0f%% | %.0f%% | %.0f / %.0f | %.1f | %.1f s (%d) / %.1f s (%d) / %.1f s |\n",
				pool, load, w / 1048576, plag, pbytes / 1048576, after,
				(cl - c0) / load, (cl_end - cl) / after, segs / span,
				cpu / segs, 100 * cpu / (win * cpus), 100 * (m1 - m0) / hz / (win * cpus),
				100 * (bl - busy0) / (tl_tot - tot0), 100 * (busy1 - bl) / (tot1 - tl_tot),
				(b1 - b0) / 1048576 / win, store, ns, mark, nm, win - store - mark
		}' "$samples"
		as_pg "$pgbin/pg_ctl" -D "$src" -m immediate -w stop >/dev/null
		running=()
		rm -rf "$src"
	done
	echo
	echo "pgbench -i -s $bulk_scale; archive: ${BENCH_PREFIX:-file://$work}${BENCH_MINIO:+ (MinIO, ${latency} ms added per response)}; $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $load_before"
	exit 0
fi

port=$(free_port 55600)
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
	psql_src "SET client_min_messages = warning; CREATE TABLE IF NOT EXISTS filler (g int, v text); INSERT INTO filler SELECT g, md5(g::text) FROM generate_series(1, $rows) g; SELECT pg_switch_wal();" >/dev/null
}

# archive_until_empty PREFIX POOL: archive the held backlog and print the
# seconds it took. Each wal-push's peak RSS (KiB) is appended to
# $work/rss-POOL by GNU time, when there is one.
archive_until_empty() {
	local t0 t1 timed=""
	if [ -x /usr/bin/time ]; then
		timed="/usr/bin/time -f %M -a -o $work/rss-$2 "
	fi
	psql_src "ALTER SYSTEM SET archive_command = '$timed$walnut --prefix $1 wal-push --pool-size $2 %p'" >/dev/null
	t0=$(now)
	psql_src "SELECT pg_reload_conf()" >/dev/null
	while [ "$(ready_count)" -gt 0 ]; do sleep 0.05; done
	t1=$(now)
	psql_src "ALTER SYSTEM SET archive_command = ''; " >/dev/null
	psql_src "SELECT pg_reload_conf()" >/dev/null
	secs "$t0" "$t1"
}

declare -A best all
for r in $(seq 1 "${BENCH_REPEAT:-1}"); do
	for pool in $pools; do
		fill_wal $((push_segments * 16 - 16))
		n=$(ready_count)
		say "archiving $n segments with --pool-size $pool (run $r)"
		t=$(archive_until_empty "$(prefix_for "push$pool-$r")" "$pool")
		rate=$(ratio "$n" "$t")
		all[$pool]="${all[$pool]:+${all[$pool]} }$rate"
		if [ -z "${best[$pool]:-}" ] || awk -v a="$rate" -v b="${best[$pool]}" 'BEGIN { exit !(a > b) }'; then
			best[$pool]=$rate
		fi
	done
done
if [ -n "$pools" ]; then
	echo "| wal-push | segments per run | segments/s (best) | all runs | peak RSS MiB (largest wal-push) |"
	echo "|---|---:|---:|---|---:|"
	for pool in $pools; do
		rss=n/a
		if [ -s "$work/rss-$pool" ]; then
			rss=$(sort -n "$work/rss-$pool" | tail -1 | awk '{ printf "%.1f", $1 / 1024 }')
		fi
		echo "| --pool-size $pool | $n | ${best[$pool]} | ${all[$pool]} | $rss |"
	done
fi

# Keeping up: pgbench at full speed with archiving on at the default pool
# size; the backlog of ready segments, sampled each second, must not grow.
keepup_secs=${BENCH_KEEPUP_SECS:-60}
if [ "$keepup_secs" -gt 0 ]; then
	as_pg "$pgbin/pgbench" -h "$work" -p "$port" -i -s 10 -q postgres >/dev/null 2>&1
	psql_src "ALTER SYSTEM SET archive_command = '$walnut --prefix $(prefix_for keepup) wal-push %p'" >/dev/null
	psql_src "SELECT pg_reload_conf()" >/dev/null
	while [ "$(ready_count)" -gt 0 ]; do sleep 0.2; done
	say "pgbench for $keepup_secs s with archiving on"
	lsn0=$(psql_src "SELECT pg_current_wal_lsn()")
	as_pg "$pgbin/pgbench" -h "$work" -p "$port" -n -c 4 -j 2 -T "$keepup_secs" postgres >"$work/pgbench.out" 2>&1 &
	bench_pid=$!
	samples=()
	while kill -0 "$bench_pid" 2>/dev/null; do
		samples+=("$(ready_count)")
		sleep 1
	done
	wait "$bench_pid" || true
	keep_mb=$(psql_src "SELECT round((pg_current_wal_lsn() - '$lsn0'::pg_lsn) / 1048576)")
	tps=$(sed -n 's/^tps = \([0-9]*\).*/\1/p' "$work/pgbench.out" | head -1)
	max=0
	for b in "${samples[@]}"; do [ "$b" -gt "$max" ] && max=$b; done
	half=$((${#samples[@]} / 2))
	echo
	echo "| pgbench -c 4, ${keepup_secs} s | tps | WAL MB/s | ready backlog: max | first half max | second half max | at end |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	m1=0 m2=0
	for i in "${!samples[@]}"; do
		if [ "$i" -lt "$half" ]; then [ "${samples[$i]}" -gt "$m1" ] && m1=${samples[$i]}; else [ "${samples[$i]}" -gt "$m2" ] && m2=${samples[$i]}; fi
	done
	echo "| default pool size | $tps | $(ratio "$keep_mb" "$keepup_secs") | $max | $m1 | $m2 | ${samples[-1]:-0} |"
	psql_src "ALTER SYSTEM SET archive_command = ''" >/dev/null
	psql_src "SELECT pg_reload_conf()" >/dev/null
	echo
fi

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
segs=$(psql_src "SELECT pg_walfile_name('$start_lsn'::pg_lsn + g * 16777216::numeric) FROM generate_series(0, ceil((pg_current_wal_lsn() - '$start_lsn'::pg_lsn) / 16777216)::int) g")
as_pg "$pgbin/pg_ctl" -D "$src" -m fast -w stop >/dev/null
running=()

# The floor: the same replay with restore_command copying plain files
# from a local directory, fetched beforehand.
as_pg mkdir "$work/walcopy"
for seg in $segs; do
	as_pg "$walnut" --terse --prefix "$replay_prefix" wal-fetch "$seg" "$work/walcopy/$seg" || true
done

# replay MODE: restore the backup, replay to the end, print seconds.
replay() {
	local dest=$work/restore-$1 rport t0 t1 opts
	rport=$(free_port $((port + 1)))
	as_pg "$walnut" --prefix "$replay_prefix" backup-fetch "$dest" LATEST >/dev/null 2>&1
	opts="-c port=$rport -c unix_socket_directories=$work -c archive_mode=off"
	if [ "$1" = cp ]; then
		opts="$opts -c 'restore_command=cp $work/walcopy/%f %p'"
	fi
	t0=$(now)
	as_pg env WALNUT_PREFETCH="${1#prefetch}" "$pgbin/pg_ctl" -D "$dest" -l "$work/restore-$1.log" \
		-o "$opts" -t 3600 -w start >/dev/null
	running+=("$dest")
	until [ "$(as_pg "$pgbin/psql" -X -A -t -h "$work" -p "$rport" -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
		sleep 0.1
	done
	t1=$(now)
	as_pg "$pgbin/pg_ctl" -D "$dest" -m immediate -w stop >/dev/null
	running=()
	sleep 1 # background prefetches end by themselves
	rm -rf "$dest"
	secs "$t0" "$t1"
}

modes="cp"
for pf in $prefetches; do modes="$modes prefetch$pf"; done
best=() all=()
for r in $(seq 1 "${BENCH_REPEAT:-1}"); do
	for m in $modes; do
		say "replay $replay_mb MB: $m (run $r)"
		t=$(replay "$m")
		all[$m]="${all[$m]:+${all[$m]} }$t"
		if [ -z "${best[$m]:-}" ] || awk -v a="$t" -v b="${best[$m]}" 'BEGIN { exit !(a < b) }'; then
			best[$m]=$t
		fi
	done
done

echo
echo "| replay | WAL MB | seconds (best) | MB/s | all runs |"
echo "|---|---:|---:|---:|---|"
for m in $modes; do
	case $m in
	cp) label="restore_command cp from local disk (floor)" ;;
	*) label="wal-fetch, WALNUT_PREFETCH=${m#prefetch}" ;;
	esac
	echo "| $label | $replay_mb | ${best[$m]} | $(ratio "$replay_mb" "${best[$m]}") | ${all[$m]} |"
done
echo
echo "archive: ${BENCH_PREFIX:-file://$work}${BENCH_MINIO:+ (MinIO, ${latency} ms added per response)}; $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $load_before"
