// Command vmtest-fetch downloads and unpacks a kernel package into the
// vmtest harness's cache, so tests that boot it find it there:
//
//	go run ./internal/vmtest/cmd/vmtest-fetch [-kernel PACKAGE] [MODULE...]
//
// Without -kernel it fetches what linux-image-amd64 depends on. The modules
// named are checked to exist, with their dependencies.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/fastpath-go/fastpath/internal/vmtest"
)

func main() {
	kernel := flag.String("kernel", "", "kernel image package (default: what "+vmtest.DefaultMetapackage+" depends on)")
	flag.Parse()
	pkg, err := vmtest.Prepare(vmtest.Config{Kernel: *kernel, Modules: flag.Args()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest-fetch:", err)
		os.Exit(1)
	}
	dir, _ := vmtest.CacheDir()
	fmt.Printf("vmtest-fetch: %s is in %s\n", pkg, dir)
}
