package main

import (
	"testing"

	"github.com/fastpath-go/fastpath/examples/internal/exampletest"
)

func TestFileServer(t *testing.T) {
	exampletest.Check(t, run, "/files/*", true)
}

func TestFileServerOTLP(t *testing.T) {
	exampletest.CheckOTLP(t, run)
}

func TestFileServerMetricsAddr(t *testing.T) {
	exampletest.CheckMetricsAddr(t, run)
}
