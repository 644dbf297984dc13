// Command deploykit is the binary behind every deploy-kit action: it parses the
// subcommand and hands over to internal/cli.
package main

import (
	"os"

	"github.com/org/deploy-kit/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}
