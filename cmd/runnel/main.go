// Command runnel is the Runnel broker and its command-line client.
package main

import (
	"os"

	"github.com/runnel-dev/runnel/internal/cli"
)

func main() {
	lazyFree()
	if err := cli.NewRootCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
