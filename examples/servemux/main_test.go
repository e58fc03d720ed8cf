package main

import (
	"testing"

	"github.com/fastpath-go/fastpath/examples/internal/exampletest"
)

func TestServeMux(t *testing.T) {
	exampletest.Check(t, run, "/files/", false)
}

func TestServeMuxOTLP(t *testing.T) {
	exampletest.CheckOTLP(t, run)
}

func TestServeMuxMetricsAddr(t *testing.T) {
	exampletest.CheckMetricsAddr(t, run)
}
