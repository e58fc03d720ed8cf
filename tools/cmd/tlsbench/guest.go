//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/fastpath-go/fastpath/internal/vmtest"
	"github.com/fastpath-go/fastpath/tools/internal/benchproc"
)

// program is this command's package, which the guest runs built statically.
const program = "github.com/fastpath-go/fastpath/tools/cmd/tlsbench"

// guestModules are the kernel modules the guest loads: kernel TLS and the
// AES-GCM it asks the crypto API for, as ktls's own guest tests load them.
var guestModules = []string{"tls", "gcm", "ctr", "ghash-generic", "aesni-intel", "ghash-clmulni-intel",
	"chacha20poly1305", "chacha-generic", "poly1305-generic"}

// guestEtc is what nginx, started as root, looks up in the guest's empty
// /etc: its default user and group (nobody, nogroup), which it keeps as it
// runs as one process.
var guestEtc = []vmtest.File{
	{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
	{Path: "/etc/group", Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
}

// runGuest boots Debian's kernel under QEMU with this program, strace and
// nginx as the host has them, runs the benchmark there (-where local), and
// reads its results from the console.
func runGuest(cfg config) (*place, error) {
	var files []vmtest.File
	// What the host lacks the guest lacks too, and its run says so.
	for _, name := range []string{"strace", "nginx"} {
		path, err := exec.LookPath(name)
		if err != nil {
			fmt.Fprintf(cfg.progress, "tlsbench: %s is not installed, so the guest has none\n", name)
			continue
		}
		fs, err := vmtest.Executable(path)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
		if name == "nginx" {
			files = append(files, guestEtc...)
		}
	}
	args := []string{"-where=" + whereLocal, "-json",
		fmt.Sprintf("-size=%d", cfg.size), fmt.Sprintf("-downloads=%d", cfg.downloads),
		fmt.Sprintf("-rounds=%d", cfg.rounds), fmt.Sprintf("-strace-rounds=%d", cfg.straceRounds)}
	start, loadStart := time.Now(), loadAverage()
	fmt.Fprintln(cfg.progress, "tlsbench: booting the guest")
	output := &lineFilter{w: cfg.progress, prefix: "guest: ", drop: resultPrefix}
	res, err := vmtest.Run(context.Background(), vmtest.Config{
		Program:   program,
		Args:      args,
		Files:     files,
		Modules:   guestModules,
		MemoryMiB: cfg.guestMemory,
		Timeout:   cfg.guestTimeout,
		Output:    output,
	})
	if err != nil {
		if _, ok := errors.AsType[*vmtest.UnavailableError](err); ok || output.last() == "" {
			return nil, err
		}
		// The guest ran out of time counting system calls: its CPU rounds
		// came out already.
		places, perr := parseResults(output.last())
		if perr != nil || len(places) != 1 {
			return nil, err
		}
		msg, _, _ := strings.Cut(err.Error(), "\n")
		fmt.Fprintf(cfg.progress, "tlsbench: %s; reporting the CPU rounds the guest finished\n", msg)
		p := places[0]
		p.Where = whereGuest
		p.Kernel, _ = vmtest.KernelPackage(vmtest.Config{})
		p.Took = time.Since(start)
		p.LoadStart, p.LoadEnd = loadStart, loadAverage()
		p.Emulation = emulation(cfg)
		return p, nil
	}
	if !res.Passed() {
		return nil, fmt.Errorf("the benchmark failed in the guest (exit status %d):\n%s", res.ExitCode, res.Output)
	}
	places, err := parseResults(res.Output)
	if err != nil {
		return nil, fmt.Errorf("%w; the guest's output:\n%s", err, res.Output)
	}
	if len(places) != 1 {
		return nil, fmt.Errorf("the guest reported %d runs, want 1", len(places))
	}
	p := places[0]
	p.Where = whereGuest
	p.Kernel = res.Kernel
	p.Boot = res.Boot
	p.Took = res.Total
	// The guest's load average is its own; the host's is what bears on an
	// emulated CPU.
	p.LoadStart, p.LoadEnd = loadStart, loadAverage()
	p.Emulation = emulation(cfg)
	return p, nil
}

// emulation says what emulates the guest's CPU, and on what.
func emulation(cfg config) string {
	return fmt.Sprintf("emulated by %s TCG (-cpu max, %d MiB) on %s", qemuVersion(), cfg.guestMemory,
		strings.TrimPrefix(benchproc.Machine(), "machine: "))
}

// qemuVersion returns "QEMU 7.2.22" or the like.
func qemuVersion() string {
	out, err := exec.Command("qemu-system-x86_64", "--version").Output()
	if err != nil {
		return "QEMU"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	if _, v, ok := strings.Cut(line, "version "); ok {
		v, _, _ = strings.Cut(v, " ")
		return "QEMU " + v
	}
	return "QEMU"
}

// lineFilter passes the guest's output on to w, each line after prefix,
// leaving out empty lines and those that start with drop (the long result
// line), the last of which it keeps in result.
// vmtest.Config.Output writes whole lines.
type lineFilter struct {
	w      io.Writer
	prefix string
	drop   string
	mu     sync.Mutex // QEMU's output may still come in as a timed-out Run returns
	result string
}

// last returns the last result line seen, "" if none.
func (f *lineFilter) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.result
}

func (f *lineFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for l := range strings.Lines(string(p)) {
		switch {
		case strings.HasPrefix(l, f.drop):
			f.result = l
		case strings.TrimSpace(l) != "":
			fmt.Fprint(f.w, f.prefix+l)
		}
	}
	return len(p), nil
}
