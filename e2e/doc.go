// Package e2e holds walnut's end-to-end tests: the built walnut binary
// against real PostgreSQL 15 clusters started by internal/testpg, exactly
// as PostgreSQL and an operator call it. It has no non-test code.
package e2e
