#!/usr/bin/env bash
# Side-by-side benchmark: walnut, pg_basebackup, pgBackRest and WAL-G back
# up and restore the same cluster in one run, and a markdown table of wall
# seconds, peak RSS and stored bytes is printed at the end. Two data sets:
# pgbench (compresses about 20x) and a table of random text made of words
# (compresses about 5x, as tables with text do), each in its own cluster.
#
#   bench/run.sh                       pgbench scale 100, then 1300 MB of text
#   BENCH_SCALE=20 bench/run.sh        another scale
#   BENCH_SCALES="50 100 200" bench/run.sh   several, for memory flatness
#   BENCH_TEXT_MB=200 bench/run.sh     another size of the text table
#   BENCH_DATASETS=text bench/run.sh   one data set only: pgbench or text
#   BENCH_KEEP=1 bench/run.sh          keep the work directory for a look
#   WALG=/path/to/wal-g bench/run.sh   WAL-G from elsewhere than the cache
#
# Needs PostgreSQL 15 (server binaries and pgbench), pg_basebackup, zstd,
# tar, pgbackrest, GNU time (/usr/bin/time) and go. WAL-G is measured when
# its binary is there ($WALG, else wal-g in walnut's cache dir, where
# bench/build-walg.sh puts it) and skipped otherwise. As root, every database
# and backup program runs as the postgres user through runuser, as in
# production. This is a measurement, not a test: it asserts nothing about
# speed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
scales=${BENCH_SCALES:-${BENCH_SCALE:-100}}
datasets=${BENCH_DATASETS:-pgbench text}
text_mb=${BENCH_TEXT_MB:-1300}
stanza=bench

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
for tool in "$pgbin/initdb" "$pgbin/pg_ctl" "$pgbin/pgbench" "$pgbin/psql" "$pgbin/pg_basebackup"; do
	[ -x "$tool" ] || die "$tool missing: install postgresql-15 and postgresql-client-15"
done
for tool in zstd tar pgbackrest go ps; do
	command -v "$tool" >/dev/null || die "$tool missing (Debian: apt-get install ${tool/ps/procps})"
done
[ -x /usr/bin/time ] || die "/usr/bin/time missing: apt-get install time"

# WAL-G is optional (CI does not build it): a WALG that is set must work,
# the cache's copy is used when present, and its absence is said once.
walg=
if [ -n "${WALG:-}" ]; then
	[ -x "$WALG" ] || die "WALG=$WALG: not an executable file"
	walg=$WALG
else
	cached=${WALNUT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/walnut}/bin/wal-g
	if [ -x "$cached" ]; then
		walg=$cached
	else
		say "WAL-G skipped: no $cached (bench/build-walg.sh builds it; or set WALG)"
	fi
fi

# as_pg runs a command as the server's user when we are root: PostgreSQL
# refuses to run as root, and backups should read files as production does.
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || die "user postgres missing (the postgresql-15 package creates it)"
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi

work=$(mktemp -d /tmp/walnut-bench.XXXXXX)
chmod 0755 "$work"
[ "$(id -u)" = 0 ] && chown postgres: "$work"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
server_up= # the data directory of the running server, if any
measuring= # the pid of the tool being measured, if any
cleanup() {
	set +e
	if [ -n "$measuring" ]; then
		kill "$measuring" 2>/dev/null # runuser passes it on
		wait "$measuring" 2>/dev/null
	fi
	if [ -n "$server_up" ]; then
		as_pg "$pgbin/pg_ctl" -D "$server_up" -m immediate -w stop >/dev/null 2>&1
	fi
	if [ -n "${BENCH_KEEP:-}" ]; then
		say "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building walnut"
(cd "$repo" && go build -trimpath -o "$work/walnut" .)
chmod 0755 "$work/walnut"
# A copy the postgres user can run: the cache may be under root's home.
if [ -n "$walg" ]; then
	cp "$walg" "$work/wal-g"
	chmod 0755 "$work/wal-g"
	"$work/wal-g" --version >/dev/null 2>&1 || die "$walg --version failed: not a WAL-G for PostgreSQL?"
fi

# free_port finds a TCP port nobody listens on at 127.0.0.1.
free_port() {
	local p
	for p in $(seq 55432 55532); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port in 55432-55532"
}

# drop_caches makes every run start from disk when the kernel lets us;
# in a container it usually does not, and then all runs read a warm cache.
cache_note="warm page cache (drop_caches not permitted)"
drop_caches() {
	sync
	if { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		cache_note="page cache dropped before each run"
	fi
}

# measure NAME CMD...: runs CMD as the server user under GNU time and
# records wall seconds and the peak RSS of its largest process in
# $work/NAME.time, and the sampled peak of all its processes together in
# $work/NAME.tree (pgBackRest and a zstd|tar pipeline are several
# processes; walnut, pg_basebackup and WAL-G are one).
measure() {
	local name=$1
	shift
	drop_caches
	as_pg /usr/bin/time -f '%e %M' -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" &
	local pid=$!
	measuring=$pid
	local peak=0 kb
	while kill -0 "$pid" 2>/dev/null; do
		kb=$(tree_rss "$pid")
		[ "$kb" -gt "$peak" ] && peak=$kb
		sleep 0.25
	done
	wait "$pid" || { measuring=; cat "$work/$name.err" >&2; die "$name failed: $*"; }
	measuring=
	echo "$peak" >"$work/$name.tree"
}

# tree_rss sums the RSS (KiB) of pid's descendants, leaving out the
# wrappers (runuser, time, a shell) that only wait for them.
tree_rss() {
	ps -e -o pid=,ppid=,rss=,comm= | awk -v root="$1" '
		{ parent[$1] = $2; rss[$1] = $3; comm[$1] = $4 }
		END {
			for (p in parent) {
				q = p
				while (q != root && q in parent && q != 1 && q != 0) q = parent[q]
				if (q == root && comm[p] !~ /^(runuser|time|bash|sh|env)$/) sum += rss[p]
			}
			printf "%.0f\n", sum
		}'
}

secs() { cut -d' ' -f1 "$work/$1.time"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
max_rss() { mib "$(cut -d' ' -f2 "$work/$1.time")"; }
tree_rss_mib() { mib "$(cat "$work/$1.tree")"; }
# mawk's %d stops at 2^31; %.0f does not.
size_of() { du -sb "$@" | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

rows=()
ratios=()
scale_sizes=()

# text_expr is an SQL expression for a row of 128 random words from a
# vocabulary of 16 (md5's hex digits spelt as words made of the letters
# g-z, which no later replace() touches): about 730 bytes that zstd:1
# compresses some 5x in heap pages, where pgbench's rows compress 20x.
text_expr() {
	local words=(ghost knot lumps mint north plum quirk rust stow trop unwork vow wimp xylo yurt zoom)
	local hex=0123456789abcdef e="md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text)" i
	for i in $(seq 0 15); do
		e="replace($e, '${hex:$i:1}', '${words[$i]} ')"
	done
	echo "$e"
}

# run_scale SET: SET is a pgbench scale, or text<MB> for the text table.
run_scale() {
	local scale=$1
	local d=$work/s$scale
	local port
	port=$(free_port)
	as_pg mkdir -p "$d/sock" "$d/pgbackrest/log" "$d/pgbackrest/lock" "$d/pgbackrest/spool" "$d/pgbb" "$d/r-walnut" "$d/r-pgbb" "$d/r-pgbackrest"
	local archive=$d/walnut-archive
	local walg_conf=$d/walg.json
	[ -n "$walg" ] && as_pg mkdir -p "$d/walg-archive" "$d/r-walg"

	say "$scale: initdb and load (port $port)"
	as_pg "$pgbin/initdb" -D "$d/data" -U postgres -A trust --no-sync >/dev/null
	# archive_command is a no-op while loading: the load's WAL is not part
	# of any backup, and archiving it twice would only slow the setup.
	cat >>"$d/data/postgresql.conf" <<-EOF
		port = $port
		listen_addresses = ''
		unix_socket_directories = '$d/sock'
		wal_level = replica
		max_wal_senders = 4
		archive_mode = on
		archive_command = '/bin/true'
		max_wal_size = 4GB
		checkpoint_timeout = 30min
	EOF
	cat >"$d/pgbackrest.conf" <<-EOF
		[global]
		repo1-path=$d/pgbackrest/repo
		log-path=$d/pgbackrest/log
		lock-path=$d/pgbackrest/lock
		spool-path=$d/pgbackrest/spool
		process-max=2
		compress-type=zst
		compress-level=1
		start-fast=y
		log-level-console=warn
		log-level-file=off

		[$stanza]
		pg1-path=$d/data
		pg1-port=$port
		pg1-socket-path=$d/sock
		pg1-user=postgres
	EOF
	# WAL-G at zstd's fastest level (klauspost's SpeedFastest, as walnut's
	# level 1; WAL-G's default is SpeedDefault, about zstd 3) with two
	# upload and download workers, as the others have two.
	cat >"$walg_conf" <<-EOF
		{
		  "WALG_FILE_PREFIX": "$d/walg-archive",
		  "WALG_COMPRESSION_METHOD": "zstd",
		  "WALG_ZSTD_LEVEL": "fastest",
		  "WALG_UPLOAD_CONCURRENCY": "2",
		  "WALG_DOWNLOAD_CONCURRENCY": "2",
		  "PGHOST": "$d/sock",
		  "PGPORT": "$port",
		  "PGUSER": "postgres",
		  "PGDATABASE": "postgres"
		}
	EOF
	[ "$(id -u)" = 0 ] && chown postgres: "$d/pgbackrest.conf" "$walg_conf"
	as_pg "$pgbin/pg_ctl" -D "$d/data" -l "$d/server.log" -w start >/dev/null
	server_up=$d/data
	local pg=(env PGHOST="$d/sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres)
	if [[ $scale == text* ]]; then
		# Rows of about 760 bytes with their headers: 1380 make a MiB.
		as_pg "${pg[@]}" "$pgbin/psql" -qAt -v ON_ERROR_STOP=1 \
			-c "CREATE TABLE words_text (id bigint PRIMARY KEY, t text)" \
			-c "INSERT INTO words_text SELECT g, $(text_expr) FROM generate_series(1, ${scale#text} * 1380) g" \
			>/dev/null 2>"$d/pgbench.log" || { cat "$d/pgbench.log" >&2; die "loading the text table failed"; }
	else
		as_pg "${pg[@]}" "$pgbin/pgbench" -i -q -s "$scale" >/dev/null 2>"$d/pgbench.log" || { cat "$d/pgbench.log" >&2; die "pgbench -i failed"; }
	fi
	as_pg "${pg[@]}" "$pgbin/psql" -qAt -c CHECKPOINT >/dev/null

	# From here on every archive receives every segment, so walnut,
	# pgBackRest and WAL-G each wait for their own WAL as in production.
	local wal_push="$work/walnut --prefix file://$archive wal-push %p"
	as_pg pgbackrest --config="$d/pgbackrest.conf" --stanza=$stanza stanza-create >/dev/null
	local pgbr_push="pgbackrest --config=$d/pgbackrest.conf --stanza=$stanza archive-push %p"
	local archive_command="$wal_push && $pgbr_push"
	[ -n "$walg" ] && archive_command+=" && $work/wal-g --config $walg_conf wal-push %p"
	as_pg "${pg[@]}" "$pgbin/psql" -qAt \
		-c "ALTER SYSTEM SET archive_command = '$archive_command'" \
		-c "SELECT pg_reload_conf()" >/dev/null
	local datasize
	datasize=$(du -sb --exclude=pg_wal "$d/data" | cut -f1)
	scale_sizes+=("$scale:$datasize")
	say "$scale: data directory $(mib $((datasize / 1024))) MiB without pg_wal"

	say "$scale: walnut backup-push"
	measure "walnut-push-$scale" env "${pg[@]:1}" WALNUT_PREFIX="file://$archive" \
		"$work/walnut" --terse backup-push "$d/data"
	say "$scale: walnut backup-fetch"
	measure "walnut-fetch-$scale" env WALNUT_PREFIX="file://$archive" \
		"$work/walnut" --terse backup-fetch --no-recovery "$d/r-walnut" LATEST
	local walnut_stored
	walnut_stored=$(size_of "$archive/backups")
	rm -rf "$d/r-walnut"
	# The same backup over the replication protocol, as from a host
	# without PGDATA, into the same archive (its WAL arrives there); it
	# restores as the other does.
	say "$scale: walnut backup-push --remote"
	measure "walnutr-push-$scale" env "${pg[@]:1}" WALNUT_PREFIX="file://$archive" \
		"$work/walnut" --terse backup-push --remote
	local remote_stored
	remote_stored=$(size_of "$archive/backups/$(cat "$work/walnutr-push-$scale.out")")

	say "$scale: pg_basebackup -Ft --compress=client-zstd:1"
	measure "pgbb-push-$scale" env "${pg[@]:1}" "$pgbin/pg_basebackup" -D "$d/pgbb/out" -Ft \
		--compress=client-zstd:1 -c fast
	# tar does not fsync; syncfs afterwards makes the restore as durable as
	# the other two before the clock stops. PostgreSQL 15 compresses only
	# base.tar; pg_wal.tar stays plain.
	say "$scale: zstd -d | tar x"
	measure "pgbb-fetch-$scale" bash -c 'set -eo pipefail
		zstd -q -d -c "$1/base.tar.zst" | tar -x -C "$2"
		tar -x -C "$2/pg_wal" -f "$1/pg_wal.tar"
		sync -f "$2"' sh "$d/pgbb/out" "$d/r-pgbb"
	local pgbb_stored
	# pg_wal.tar (the backup's WAL, uncompressed) is left out, as the WAL
	# in walnut's and pgBackRest's archives is.
	pgbb_stored=$(size_of "$d/pgbb/out/base.tar.zst" "$d/pgbb/out/backup_manifest")
	rm -rf "$d/r-pgbb"

	say "$scale: pgbackrest backup --type=full"
	measure "pgbr-push-$scale" pgbackrest --config="$d/pgbackrest.conf" --stanza=$stanza backup --type=full
	say "$scale: pgbackrest restore"
	measure "pgbr-fetch-$scale" pgbackrest --config="$d/pgbackrest.conf" --stanza=$stanza \
		--pg1-path="$d/r-pgbackrest" restore
	local pgbr_stored
	pgbr_stored=$(size_of "$d/pgbackrest/repo/backup")
	rm -rf "$d/r-pgbackrest"

	local walg_stored= others=(pgbb pgbr)
	if [ -n "$walg" ]; then
		others+=(walg)
		say "$scale: wal-g backup-push --full"
		measure "walg-push-$scale" "$work/wal-g" --config "$walg_conf" backup-push --full "$d/data"
		# sync -f as for pg_basebackup: the restore is timed until durable.
		say "$scale: wal-g backup-fetch, then sync -f"
		measure "walg-fetch-$scale" bash -c 'set -e
			"$1" --config "$2" backup-fetch "$3" LATEST
			sync -f "$3"' sh "$work/wal-g" "$walg_conf" "$d/r-walg"
		# The backup's objects only; its WAL (wal_005) is left out as for
		# the others.
		walg_stored=$(size_of "$d/walg-archive/basebackups_005")
		rm -rf "$d/r-walg"
	fi

	as_pg "$pgbin/pg_ctl" -D "$d/data" -m fast -w stop >/dev/null
	server_up=
	rm -rf "$d/data"

	local tool stored push fetch label
	for tool in walnut "${others[@]}"; do
		tool_is "$tool"
		push=$tool-push-$scale fetch=$tool-fetch-$scale
		rows+=("| $scale | $label | $(secs "$push") | $(secs "$fetch") | $(max_rss "$push") / $(tree_rss_mib "$push") | $(max_rss "$fetch") / $(tree_rss_mib "$fetch") | $(mib $((stored / 1024))) |")
	done
	rows+=("| $scale | walnut --remote | $(secs "walnutr-push-$scale") | (as walnut) | $(max_rss "walnutr-push-$scale") / $(tree_rss_mib "walnutr-push-$scale") | | $(mib $((remote_stored / 1024))) |")
	ratios+=("$(awk -v s="$scale" -v wb="$(secs "walnutr-push-$scale")" -v tb="$(secs "pgbb-push-$scale")" \
		-v ws="$remote_stored" -v ts="$pgbb_stored" \
		'BEGIN { printf "| %s | pg_basebackup (walnut --remote) | %.2fx | | %.3f |", s, tb / wb, ws / ts }')")
	for tool in "${others[@]}"; do
		tool_is "$tool"
		ratios+=("$(awk -v s="$scale" -v l="$label" \
			-v wb="$(secs "walnut-push-$scale")" -v tb="$(secs "$tool-push-$scale")" \
			-v wr="$(secs "walnut-fetch-$scale")" -v tr="$(secs "$tool-fetch-$scale")" \
			-v ws="$walnut_stored" -v ts="$stored" \
			'BEGIN { printf "| %s | %s | %.2fx | %.2fx | %.3f |", s, l, tb / wb, tr / wr, ws / ts }')")
	done
	# Issue 21's goal is against the fastest of the others, separately
	# for backup and for restore.
	local fb='' fr='' fbl='' frl=''
	for tool in "${others[@]}"; do
		tool_is "$tool"
		if [ -z "$fb" ] || awk -v a="$(secs "$tool-push-$scale")" -v b="$fb" 'BEGIN { exit !(a < b) }'; then
			fb=$(secs "$tool-push-$scale") fbl=$label
		fi
		if [ -z "$fr" ] || awk -v a="$(secs "$tool-fetch-$scale")" -v b="$fr" 'BEGIN { exit !(a < b) }'; then
			fr=$(secs "$tool-fetch-$scale") frl=$label
		fi
	done
	ratios+=("$(awk -v s="$scale" -v bl="$fbl" -v rl="$frl" \
		-v wb="$(secs "walnut-push-$scale")" -v tb="$fb" \
		-v wr="$(secs "walnut-fetch-$scale")" -v tr="$fr" \
		'BEGIN { printf "| %s | the fastest (backup: %s; restore: %s) | %.2fx | %.2fx | |", s, bl, rl, tb / wb, tr / wr }')")
}

# tool_is TOOL sets stored and label for one of run_scale's tools (it
# reads run_scale's locals: bash's scoping is dynamic).
tool_is() {
	case $1 in
	walnut) stored=$walnut_stored label=walnut ;;
	pgbb) stored=$pgbb_stored label="pg_basebackup" ;;
	pgbr) stored=$pgbr_stored label="pgBackRest" ;;
	walg) stored=$walg_stored label="WAL-G" ;;
	esac
}

[[ $text_mb =~ ^[1-9][0-9]*$ ]] || die "BENCH_TEXT_MB=$text_mb: want a positive integer"
for set in $datasets; do
	case $set in
	pgbench)
		for s in $scales; do
			[[ $s =~ ^[0-9]+$ ]] || die "scale $s: want a positive integer"
			run_scale "$s"
		done
		;;
	text) run_scale "text$text_mb" ;;
	*) die "BENCH_DATASETS: unknown data set $set (pgbench, text)" ;;
	esac
done

mem_kib=$(awk '/MemTotal/ { print $2 }' /proc/meminfo)
echo
echo "### walnut $(cd "$repo" && git describe --tags --always --dirty 2>/dev/null || echo dev), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(mib "$mem_kib") MiB RAM, $(df -T "$work" | awk 'NR == 2 { print $2 " on " $1 }'), load average before the run: $load_before"
walg_version="WAL-G not measured"
[ -n "$walg" ] && walg_version="WAL-G $("$work/wal-g" --version | awk '{ print $3 }')"
echo "- $($pgbin/postgres --version), $(pgbackrest version), $walg_version, $(zstd --version | sed 's/^\*\*\* //; s/, by.*//'), $(go version | cut -d' ' -f3)"
echo "- data sets: a number is a pgbench scale, text<MB> the table of random words; data directories without pg_wal: $(for x in "${scale_sizes[@]}"; do printf '%s %s MiB; ' "${x%%:*}" "$(mib $((${x#*:} / 1024)))"; done)$cache_note"
echo "- walnut: file:// archive, defaults (zstd:1, 2 upload/download workers); walnut --remote: backup-push --remote over the unix socket, same defaults; pg_basebackup: -Ft --compress=client-zstd:1 -c fast, restored with zstd -d | tar x then sync -f; pgBackRest: process-max=2, compress-type=zst, compress-level=1, start-fast=y${walg:+; WAL-G: backup-push --full to WALG_FILE_PREFIX, WALG_COMPRESSION_METHOD=zstd with WALG_ZSTD_LEVEL=fastest, upload and download concurrency 2, restored with backup-fetch then sync -f}"
echo
echo "| data set | tool | backup s | restore s | backup peak RSS MiB (largest process / all processes) | restore peak RSS MiB (largest / all) | stored MiB |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "| data set | walnut vs | backup speedup (their s / walnut s) | restore speedup | stored size (walnut / theirs) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ratios[@]}"
