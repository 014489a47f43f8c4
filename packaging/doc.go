// Package packaging holds what walnut's release and Debian package are
// made of: the systemd units (systemd/), the example envdir (env/), the
// package builder (mkdeb/, a module of its own so that nfpm stays out of
// walnut's) and their tests. scripts/release.sh drives them.
package packaging
