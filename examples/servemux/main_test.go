package main

import (
	"testing"

	"github.com/fastpath-go/fastpath/examples/internal/exampletest"
)

// TestServeMux checks what TestFileServer does; ServeMux records the
// pattern as the route, and there is no chi RequestID.
func TestServeMux(t *testing.T) {
	exampletest.Run(t, example, exampletest.Want{
		Package: "github.com/fastpath-go/fastpath/examples/servemux", Route: "/files/", Chi: false})
}
