package main

import (
	"testing"

	"github.com/fastpath-go/fastpath/examples/internal/exampletest"
)

func TestFileServer(t *testing.T) {
	exampletest.Run(t, example, exampletest.Want{
		Package: "github.com/fastpath-go/fastpath/examples/fileserver", Route: "/files/*", Chi: true})
}
