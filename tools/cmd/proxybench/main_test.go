//go:build linux

package main

import (
	"flag"
	"io"
	"os"
	"testing"
)

// TestMain lets the test binary stand in for the command's child processes.
func TestMain(m *testing.M) {
	for _, a := range os.Args[1:] {
		if a == "-child" || a == "-serve" {
			fs := flag.NewFlagSet("child", flag.ExitOnError)
			child := fs.String("child", "", "")
			up := fs.String("upstream", "", "")
			dir := fs.String("serve", "", "")
			fs.Parse(os.Args[1:])
			flag.CommandLine = fs
			var err error
			if *child != "" {
				err = serveProxy(*child, *up)
			} else {
				err = serveFiles(*dir)
			}
			if err != nil {
				os.Stderr.WriteString(err.Error() + "\n")
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

// TestRun runs the whole measurement on a small file and checks what does
// not depend on timing: every proxy that can run delivers every byte, and
// fastpath moves them by splice with next to no reads and writes.
func TestRun(t *testing.T) {
	const size = 8 << 20
	res, err := run(config{size: size, downloads: 2, rounds: 1, straceRounds: 1, progress: io.Discard, noPin: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.list {
		if r.skipped != "" {
			t.Logf("%s skipped: %s", r.name, r.skipped)
			continue
		}
		if r.served != 2*size || len(r.cpu) != 1 {
			t.Errorf("%s: served %d bytes in %d rounds, want %d in 1", r.name, r.served, len(r.cpu), 2*size)
		}
	}
	fp := res.find(pFastpath)
	if fp.traced {
		if got := fp.calls["splice"].Sum; got != 2*2*size+2 {
			// Both halves of every splice: socket to pipe and pipe to
			// socket, for the two downloads and the 1-byte warm-up.
			t.Errorf("fastpath spliced %d bytes, want %d", got, 2*2*size+2)
		}
		if rw := fp.calls.Total(dataSyscalls...).Count; rw > 200 {
			t.Errorf("fastpath made %d read/write calls for 16 MiB, want a handful", rw)
		}
	} else {
		t.Logf("not traced: %v", fp.traceErr)
	}
}
