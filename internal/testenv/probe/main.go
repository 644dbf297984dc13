// Command probe prints the named environment variables as NAME=<hex of value>, one
// per line, or NAME!unset. Tests run it in a FROM scratch container to see exactly
// what reached the container's environment.
package main

import (
	"encoding/hex"
	"fmt"
	"os"
)

func main() {
	for _, name := range os.Args[1:] {
		v, ok := os.LookupEnv(name)
		if !ok {
			fmt.Printf("%s!unset\n", name)
			continue
		}
		fmt.Printf("%s=%s\n", name, hex.EncodeToString([]byte(v)))
	}
}
