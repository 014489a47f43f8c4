// Command walnut is continuous archiving and point-in-time recovery for
// PostgreSQL.
package main

import (
	"os"

	"github.com/walnut-pg/walnut/commands"
)

func main() {
	os.Exit(commands.Main(os.Args, os.Environ(), os.Stdout, os.Stderr))
}
