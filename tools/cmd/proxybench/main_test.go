//go:build linux

package main

import (
	"flag"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/fastpath-go/fastpath/internal/asuser"
	"github.com/fastpath-go/fastpath/tools/internal/benchproc"
)

// TestMain lets the test binary stand in for the command's child processes.
func TestMain(m *testing.M) {
	for _, a := range os.Args[1:] {
		if a == "-child" || a == "-serve" || a == "-loop" {
			fs := flag.NewFlagSet("child", flag.ExitOnError)
			child := fs.String("child", "", "")
			up := fs.String("upstream", "", "")
			dir := fs.String("serve", "", "")
			loop := fs.Int("loop", -1, "")
			size := fs.Int64("size", 0, "")
			fs.Parse(os.Args[1:])
			flag.CommandLine = fs
			var err error
			switch {
			case *loop >= 0:
				err = runLoop(*loop, *up, *size)
			case *child != "":
				err = serveProxy(*child, *up)
			default:
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
	res, err := run(config{size: size, downloads: 2, rounds: 1, straceRounds: 1, progress: io.Discard, noPin: true, sequential: true})
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

// TestRunLoad runs the load scenarios small, as root and as a plain user
// when this process can start one (as itself otherwise), and checks what
// does not depend on timing: every round measured every download, and
// fastpath spliced without wanting for a pipe, as the user it ran as.
func TestRunLoad(t *testing.T) {
	as := "user"
	if os.Geteuid() == 0 {
		if err := asuser.Check(); err != nil {
			t.Logf("as root only: %v", err)
			as = "root"
		} else {
			as = "root,user"
		}
	}
	accts, err := accounts(as)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20
	load := []*scenario{
		{name: "concurrent", file: "c.bin", downloads: 20, size: size},
		{name: "slow", file: "s.bin", downloads: 4, size: size, slow: 4, slowRate: 50000},
	}
	res, err := run(config{size: 8 << 20, rounds: 2, progress: io.Discard, noPin: true, load: load, accounts: accts})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.load) != 2*2*len(accts) {
		t.Fatalf("%d results, want %d", len(res.load), 2*2*len(accts))
	}
	for _, r := range res.load {
		name := r.scenario.name + " as " + r.account.name + ", " + r.proxy
		if len(r.perGiB) != 2 || len(r.served) != 2 {
			t.Errorf("%s: %d rounds measured, want 2", name, len(r.perGiB))
		}
		for _, s := range r.served {
			if s < int64(r.scenario.downloads)*size {
				t.Errorf("%s: served %d bytes, want at least %d", name, s, r.scenario.downloads*size)
			}
		}
		if r.proxy != pFastpath {
			if len(r.pipes) != 0 {
				t.Errorf("%s: pipe figures from a proxy without them", name)
			}
			continue
		}
		if len(r.pipes) != 2 {
			t.Fatalf("%s: %d rounds of pipe figures, want 2", name, len(r.pipes))
		}
		for _, p := range r.pipes {
			if p.Spliced < int64(r.scenario.downloads)*size || p.NoPipe != [len(p.NoPipe)]int64{} {
				t.Errorf("%s: spliced %d, copied for want of a pipe %v; want every download spliced", name, p.Spliced, p.NoPipe)
			}
			if root := r.account.name == "root"; p.Budget.Privileged != root {
				t.Errorf("%s: the proxy's budget %+v, want privileged %v", name, p.Budget, root)
			}
		}
	}
	var out strings.Builder
	res.write(&out)
	if !strings.Contains(out.String(), "| concurrent | ") || !strings.Contains(out.String(), "copied for want of a pipe") {
		t.Errorf("the report lacks the load table:\n%s", out.String())
	}
}

// TestRunPipeSizes runs the bare loops once each and checks that every one
// moved every byte, the splice loops in no more calls than their pipe
// allows at best.
func TestRunPipeSizes(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/f"
	const total = 8 << 20
	if err := benchproc.WriteFile(path, 4<<20); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{cfg: config{rounds: 1, progress: io.Discard}, self: self}
	list, err := b.runPipeSizes(path, total)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(pipeSizes) {
		t.Fatalf("%d loops measured, want %d", len(list), len(pipeSizes))
	}
	for _, r := range list {
		// At best, a pair of calls per pipeful (per 32 KiB for the copy).
		per := int64(r.size)
		if per == 0 {
			per = 32 << 10
		}
		if len(r.perGiB) != 1 || r.calls < 2*(1<<30)/per {
			t.Errorf("%s: %d rounds, %d calls per GiB; want 1 round and at least %d calls", loopName(r.size), len(r.perGiB), r.calls, 2*(1<<30)/per)
		}
	}
}
