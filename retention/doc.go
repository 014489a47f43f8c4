// Package retention decides and carries out what delete removes, marks
// backups permanent and lists them.
package retention
