//go:build linux

package main

import (
	"flag"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/fastpath-go/fastpath/internal/strace"
)

// TestMain lets the test binary stand in for the command's child processes,
// which it starts with -child.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "-child" {
		fs := flag.NewFlagSet("child", flag.ExitOnError)
		child := fs.String("child", "", "")
		file := fs.String("file", "", "")
		fs.Parse(os.Args[1:])
		if err := serve(*child, *file); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRun runs the whole measurement on a small file and checks the byte
// counts, which do not depend on timing.
func TestRun(t *testing.T) {
	const size = 4 << 20
	res, err := run(config{size: size, downloads: 2, rounds: 1, straceRounds: 1, progress: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		stack        string
		wantReported int64
		wantSendfile int64
	}{
		{stack: "net/http", wantReported: -1, wantSendfile: 2 * (size - 512)},
		{stack: "naive wrapper", wantReported: 2 * size, wantSendfile: 0},
		{stack: "otelhttp", wantReported: 0, wantSendfile: 2 * (size - 512)},
		{stack: "fastpath", wantReported: 2 * size, wantSendfile: 2 * (size - 512)},
	}
	for i, tt := range tests {
		t.Run(tt.stack, func(t *testing.T) {
			r := res.stacks[i]
			if r.Stack != tt.stack {
				t.Fatalf("row %d is %s, want %s", i, r.Stack, tt.stack)
			}
			if r.Served != 2*size {
				t.Errorf("served %d, want %d", r.Served, 2*size)
			}
			if r.Reported != tt.wantReported {
				t.Errorf("reported %d, want %d", r.Reported, tt.wantReported)
			}
			if len(r.CPU) != 1 || r.CPU[0] <= 0 {
				t.Errorf("CPU samples %v, want one positive", r.CPU)
			}
			if res.straceOK != nil {
				return
			}
			if r.Sendfile != tt.wantSendfile {
				t.Errorf("strace saw sendfile return %d bytes, want %d", r.Sendfile, tt.wantSendfile)
			}
		})
	}
	if err := strace.Check(); err != nil {
		t.Logf("system calls not counted: %v", err)
	} else {
		// The naive wrapper hides ReadFrom, so io.Copy moves the file through
		// a 32 KiB buffer: at least one read and one write per 32 KiB, more
		// when the socket is full, whatever the timing. (How many sendfile
		// calls net/http needs does depend on timing, so the two are not
		// compared.)
		const chunks = 2 * size / (32 << 10)
		calls := res.stacks[1].Calls
		if r, w := calls["read"], calls["write"]; r.Count < chunks || w.Count < chunks || w.Sum < 2*size {
			t.Errorf("naive wrapper: %d reads, %d writes of %d bytes; want at least %d of each, the 32 KiB copy loop, writing %d bytes",
				r.Count, w.Count, w.Sum, chunks, 2*size)
		}
	}
	var out strings.Builder
	res.write(&out)
	if !strings.Contains(out.String(), "| fastpath |") || !strings.Contains(out.String(), "(correct)") {
		t.Errorf("table:\n%s", out.String())
	}
}
