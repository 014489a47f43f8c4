#!/usr/bin/env bash
# Print walnut's version for a build from this clone, or with "deb" the
# same version as a Debian package version.
#
# The version is what `git describe` says from the newest v* tag
# (v1.2.0, v1.2.0-5-g<commit>, with -dirty for uncommitted changes);
# before the first tag, as if v0.0.0 tagged the root commit. A Debian
# version must start with a digit and sort as the releases do: the v goes,
# commits after a tag sort after it (+5.g<commit>), a pre-release before
# its release (~rc1). A VERSION in the environment is taken as given.
set -euo pipefail
cd "$(dirname "$0")/.."

v=${VERSION:-}
[[ -n $v ]] || v=$(git describe --tags --match 'v[0-9]*' --dirty --abbrev=12 2>/dev/null) || {
	v="v0.0.0-$(git rev-list --count HEAD)-g$(git rev-parse --short=12 HEAD)"
	git diff --quiet HEAD -- || v+="-dirty"
}
case "${1:-}" in
"") echo "$v" ;;
deb)
	echo "$v" | sed -E 's/^v//; s/-([0-9]+)-g([0-9a-f]+)/+\1.g\2/; s/-dirty$/+dirty/; s/\+(.*)\+dirty$/+\1.dirty/; s/-/~/g'
	;;
*)
	echo "usage: $0 [deb]" >&2
	exit 2
	;;
esac
