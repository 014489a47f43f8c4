package commands

import "github.com/walnut-pg/walnut/commands/clidoc"

func varsHelp(names ...string) string { return clidoc.VarsHelp(names...) }
