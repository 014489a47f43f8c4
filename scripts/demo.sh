#!/usr/bin/env bash
# make demo: walnut's main job on a throwaway PostgreSQL 15 and a file://
# archive. Archive WAL, load pgbench data, back up while writing, write
# more, create a restore point, drop a table, check the setup and verify
# the archive (check, backup-verify, wal-verify, the restore drill), then
# restore to the restore point into a new directory, start it, and check
# the table is back as it was.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
walnut_src=${WALNUT_BIN:-$top/bin/walnut}
bindir=${WALNUT_PG_BINDIR:-/usr/lib/postgresql/15/bin}
[ -x "$walnut_src" ] || { echo "demo: $walnut_src not built: run make build" >&2; exit 1; }
[ -x "$bindir/postgres" ] || { echo "demo: no PostgreSQL 15 in $bindir: run scripts/setup.sh" >&2; exit 1; }

# PostgreSQL refuses to run as root: run the database side as postgres.
if [ "$(id -u)" = 0 ]; then
	as_db() { runuser -u postgres -- "$@"; }
	owner=postgres
else
	as_db() { "$@"; }
	owner=$(id -un)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/walnut-demo.XXXXXX")
chmod 0755 "$work"
src=$work/src restored=$work/restored archive=$work/archive envdir=$work/env
walnut=$work/walnut
cp "$walnut_src" "$walnut"
chmod 0755 "$walnut"
mkdir -p "$envdir"
echo "file://$archive" > "$envdir/WALNUT_PREFIX"
echo "zstd" > "$envdir/WALNUT_COMPRESSION"
chown -R "$owner" "$work"
chmod 0700 "$envdir"
chmod 0600 "$envdir"/*

export PGHOST=$work PGUSER=postgres PGDATABASE=postgres
cleanup() {
	as_db "$bindir/pg_ctl" -D "$restored" -m immediate stop >/dev/null 2>&1 || true
	as_db "$bindir/pg_ctl" -D "$src" -m immediate stop >/dev/null 2>&1 || true
	if [ "${KEEP:-}" = "" ]; then rm -rf "$work"; else echo "demo: kept $work"; fi
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
psql_src() { as_db env PGHOST="$work" PGPORT=54401 "$bindir/psql" -XAtq -v ON_ERROR_STOP=1 -U postgres -d postgres -c "$1"; }
psql_restored() { as_db env PGHOST="$work" PGPORT=54402 "$bindir/psql" -XAtq -v ON_ERROR_STOP=1 -U postgres -d postgres -c "$1"; }

step "throwaway PostgreSQL 15 in $src, archiving to file://$archive"
as_db "$bindir/initdb" -D "$src" -U postgres --auth=trust >/dev/null
cat >> "$src/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$work'
port = 54401
wal_level = replica
archive_mode = on
archive_command = '$walnut --envdir $envdir wal-push %p'
CONF
as_db "$bindir/pg_ctl" -D "$src" -l "$work/src.log" -w start >/dev/null

step "load pgbench data (scale 10)"
as_db env PGHOST="$work" PGPORT=54401 "$bindir/pgbench" -q -i -s 10 -U postgres postgres 2>&1 | tail -1

step "backup-push while pgbench writes"
as_db env PGHOST="$work" PGPORT=54401 "$bindir/pgbench" -n -c 2 -T 8 -U postgres postgres >/dev/null 2>&1 &
load=$!
as_db env PGHOST="$work" PGPORT=54401 PGUSER=postgres "$walnut" --envdir "$envdir" backup-push "$src"
wait $load

step "more writes, then a restore point, then the mistake"
as_db env PGHOST="$work" PGPORT=54401 "$bindir/pgbench" -n -c 2 -t 500 -U postgres postgres >/dev/null 2>&1
before=$(psql_src "SELECT count(*) || ' rows, sum(abalance) = ' || sum(abalance) FROM pgbench_accounts")
psql_src "SELECT pg_create_restore_point('before_drop')" >/dev/null
psql_src "DROP TABLE pgbench_accounts"
seg=$(psql_src "SELECT pg_walfile_name(pg_switch_wal())")
echo "pgbench_accounts before the drop: $before"
for _ in $(seq 1 120); do
	done_seg=$(psql_src "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
	[[ "$done_seg" > "$seg" || "$done_seg" == "$seg" ]] && break
	sleep 0.5
done
echo "archived through $done_seg"

step "backup-list"
as_db "$walnut" --envdir "$envdir" backup-list

step "check: the store, archive_command, a WAL round trip, the archiver, walnut.json, secrets"
as_db env PGHOST="$work" PGPORT=54401 PGUSER=postgres "$walnut" --envdir "$envdir" check "$src"

step "backup-verify LATEST: every object decoded and checked"
as_db "$walnut" --envdir "$envdir" backup-verify LATEST

step "wal-verify: no gaps from the backup to the newest segment"
as_db "$walnut" --envdir "$envdir" wal-verify

step "backup-verify --restore LATEST: the restore drill"
as_db "$walnut" --envdir "$envdir" --terse backup-verify --restore LATEST | grep -v '^  '

step "backup-fetch LATEST to the restore point before_drop"
as_db "$walnut" --envdir "$envdir" backup-fetch "$restored" LATEST \
	--recovery-target-name before_drop --recovery-target-action promote

step "start the restored cluster and let it recover"
as_db "$bindir/pg_ctl" -D "$restored" -l "$work/restored.log" -o "-p 54402" -w -t 300 start >/dev/null
for _ in $(seq 1 600); do
	[ "$(psql_restored 'SELECT pg_is_in_recovery()' 2>/dev/null)" = "f" ] && break
	sleep 0.5
done
after=$(psql_restored "SELECT count(*) || ' rows, sum(abalance) = ' || sum(abalance) FROM pgbench_accounts")

step "summary"
echo "source before the drop: $before"
echo "restored:               $after"
if [ "$before" = "$after" ]; then
	echo "demo: OK: point-in-time restore brought pgbench_accounts back exactly as it was"
else
	echo "demo: FAILED: restored data differs" >&2
	tail -20 "$work/restored.log" >&2
	exit 1
fi
