package benchproc

import (
	"runtime"
	"strings"

	"github.com/fastpath-go/fastpath/internal/testutil"
)

// Machine returns the start of a report's machine line: "machine: ", the
// CPU model and count, the Go version and then each of about, comma
// separated. The commands follow it with "; " and how they pinned.
func Machine(about ...string) string {
	return "machine: " + strings.Join(append([]string{testutil.Machine(), runtime.Version()}, about...), ", ")
}
