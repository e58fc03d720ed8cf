//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fastpath-go/fastpath/internal/asuser"
	"github.com/fastpath-go/fastpath/internal/zerocopy"
	"github.com/fastpath-go/fastpath/tools/internal/benchproc"
)

// A load scenario: many downloads at once through one proxy, optionally
// while slow clients hold transfers open, the way a service meets its
// clients. Only the Go proxies run them: they compare the proxy with the
// ReverseProxy it replaces, as root and as a plain user (whose pipes the
// kernel limits).
type scenario struct {
	name      string
	file      string // what the downloads get
	downloads int    // at once
	size      int64  // of each
	slow      int    // slow clients, started first, reading the big file
	slowRate  int    // bytes per second each reads
}

// account is whom a proxy runs as.
type account struct {
	name string
	uid  int // -1: this process's user
}

// loadResult is one proxy's figures in one scenario, as one account.
type loadResult struct {
	scenario *scenario
	account  account
	proxy    string
	perGiB   []time.Duration      // CPU per GiB served, per round
	pipes    []zerocopy.PipeStats // fastpath's pool at the end of each round
	served   []int64
}

// slowChunk is what a slow client reads at a time; it reads slowRate bytes
// a second as slowChunk every slowChunk/slowRate.
const slowChunk = 5000

// measureLoad runs one round of sc through a proxy as acct and returns the
// proxy's CPU time, the bytes served meanwhile and, for fastpath, its pipe
// pool's figures at the end.
func (b *bench) measureLoad(sc *scenario, name string, acct account) (time.Duration, int64, *zerocopy.PipeStats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	addr, err := benchproc.FreeAddr()
	if err != nil {
		return 0, 0, nil, err
	}
	exe := b.self
	if acct.uid >= 0 {
		exe = b.userSelf
	}
	argv := []string{exe, "-child", name, "-upstream", b.upstream + "|" + addr}
	if b.pin {
		argv = benchproc.OnCPU(0, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = os.TempDir()
	if acct.uid >= 0 {
		asuser.Apply(cmd, acct.uid)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, nil, err
	}
	pid := cmd.Process.Pid
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stdin.Close()
		return cmd.Wait()
	}
	defer stop()
	if err := benchproc.WaitListening(addr); err != nil {
		return 0, 0, nil, err
	}
	if p, err := benchproc.Descendant(pid); err == nil {
		pid = p
	}
	base := "http://" + addr
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: sc.downloads + sc.slow}}
	defer client.CloseIdleConnections()
	if err := download(client, base+"/big.bin", 0, "bytes=0-0"); err != nil {
		return 0, 0, nil, err
	}

	// The slow clients each read the big file at slowRate, until the
	// round ends; the round starts once all of them have bytes.
	var (
		slowBytes atomic.Int64
		started   sync.WaitGroup
		slowDone  sync.WaitGroup
		end       = make(chan struct{})
		slowErr   = make(chan error, sc.slow)
	)
	started.Add(sc.slow)
	for range sc.slow {
		slowDone.Add(1)
		go func() {
			defer slowDone.Done()
			first := true
			done := func() {
				if first {
					first = false
					started.Done()
				}
			}
			defer done()
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/big.bin", nil)
			resp, err := client.Do(req)
			if err != nil {
				slowErr <- err
				return
			}
			defer resp.Body.Close()
			tick := time.NewTicker(time.Second * slowChunk / time.Duration(sc.slowRate))
			defer tick.Stop()
			buf := make([]byte, slowChunk)
			for {
				n, err := io.ReadFull(resp.Body, buf)
				slowBytes.Add(int64(n))
				done()
				if err != nil {
					slowErr <- fmt.Errorf("slow client: %w", err)
					return
				}
				select {
				case <-tick.C:
				case <-end:
					return
				}
			}
		}()
	}
	started.Wait()
	select {
	case err := <-slowErr:
		close(end)
		return 0, 0, nil, err
	default:
	}
	before, err := benchproc.ProcCPU(pid)
	if err != nil {
		close(end)
		return 0, 0, nil, err
	}
	slowBefore := slowBytes.Load()
	errs := make(chan error, sc.downloads)
	for range sc.downloads {
		go func() { errs <- download(client, base+"/"+sc.file, sc.size, "") }()
	}
	var derr error
	for range sc.downloads {
		if err := <-errs; err != nil && derr == nil {
			derr = err
		}
	}
	after, err := benchproc.ProcCPU(pid)
	served := int64(sc.downloads)*sc.size + slowBytes.Load() - slowBefore
	close(end)
	slowDone.Wait()
	client.CloseIdleConnections()
	if derr != nil {
		return 0, 0, nil, derr
	}
	if err != nil {
		return 0, 0, nil, err
	}
	if err := stop(); err != nil && !isSignalExit(err) {
		return 0, 0, nil, fmt.Errorf("proxy: %w", err)
	}
	var stats *zerocopy.PipeStats
	if line, ok := strings.CutPrefix(strings.TrimSpace(stdout.String()), "PIPES "); ok {
		stats = new(zerocopy.PipeStats)
		if err := json.Unmarshal([]byte(line), stats); err != nil {
			return 0, 0, nil, fmt.Errorf("the proxy's pipe figures: %w", err)
		}
	}
	return after - before, served, stats, nil
}

// runLoad runs the load scenarios, interleaved: in each round every
// scenario runs as every account through ReverseProxy and fastpath, the
// one of the two that goes first alternating.
func (b *bench) runLoad(scenarios []*scenario, accounts []account) ([]*loadResult, error) {
	var list []*loadResult
	for _, sc := range scenarios {
		for _, acct := range accounts {
			for _, p := range []string{pReverseProxy, pFastpath} {
				list = append(list, &loadResult{scenario: sc, account: acct, proxy: p})
			}
		}
	}
	for round := range b.cfg.rounds {
		for i := 0; i < len(list); i += 2 {
			pair := list[i : i+2]
			if round%2 == 1 {
				pair = []*loadResult{pair[1], pair[0]}
			}
			for _, r := range pair {
				fmt.Fprintf(b.cfg.progress, "round %d/%d: %s as %s: %s\n", round+1, b.cfg.rounds, r.scenario.name, r.account.name, r.proxy)
				cpu, served, stats, err := b.measureLoad(r.scenario, r.proxy, r.account)
				if err != nil {
					return nil, fmt.Errorf("%s as %s, %s: %w", r.scenario.name, r.account.name, r.proxy, err)
				}
				r.perGiB = append(r.perGiB, benchproc.PerGiB(cpu, served))
				r.served = append(r.served, served)
				if stats != nil {
					r.pipes = append(r.pipes, *stats)
				}
			}
		}
	}
	return list, nil
}

// accounts returns whom the load scenarios run the proxies as: root and a
// user no process runs as, when this process is root; otherwise itself.
func accounts(which string) ([]account, error) {
	var list []account
	for _, a := range strings.Split(which, ",") {
		switch a {
		case "root":
			if os.Geteuid() != 0 {
				return nil, errors.New("-as root: this process is not root")
			}
			list = append(list, account{name: "root", uid: -1})
		case "user":
			if os.Geteuid() != 0 {
				list = append(list, account{name: fmt.Sprintf("uid %d", os.Geteuid()), uid: -1})
				continue
			}
			if err := asuser.Check(); err != nil {
				return nil, err
			}
			uid, err := asuser.FreeUID()
			if err != nil {
				return nil, err
			}
			list = append(list, account{name: fmt.Sprintf("uid %d", uid), uid: uid})
		case "":
		default:
			return nil, fmt.Errorf("-as %q: root or user", a)
		}
	}
	return list, nil
}

// pipeLimits describes the kernel's pipe limits, for the report.
func pipeLimits() string {
	var parts []string
	for _, name := range []string{"pipe-max-size", "pipe-user-pages-soft", "pipe-user-pages-hard"} {
		raw, err := os.ReadFile("/proc/sys/fs/" + name)
		v := "?"
		if err == nil {
			v = strings.TrimSpace(string(raw))
		}
		parts = append(parts, "fs."+name+" "+v)
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		parts = append(parts, fmt.Sprintf("RLIMIT_NOFILE %d", rl.Cur))
	}
	return strings.Join(parts, ", ")
}

// writeLoad writes the load scenarios' table.
func writeLoad(w io.Writer, list []*loadResult, rounds int) {
	fmt.Fprintf(w, "\nLoad scenarios (ReverseProxy and fastpath only; CPU: the proxy process over the downloads, per GiB served by it, slow clients' bytes included; median and quartiles of %d interleaved rounds); %s:\n\n", rounds, pipeLimits())
	fmt.Fprintln(w, "| scenario | account | proxy | CPU per GiB (quartiles) | vs ReverseProxy | splice calls per GiB | pipes: largest, made | copied for want of a pipe |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for i := 0; i < len(list); i += 2 {
		base := benchproc.Median(list[i].perGiB)
		for _, r := range list[i : i+2] {
			med := benchproc.Median(r.perGiB)
			q1, q3 := benchproc.Quartiles(r.perGiB)
			ratio := "-"
			if base > 0 {
				ratio = fmt.Sprintf("%.2fx", float64(med)/float64(base))
			}
			calls, pipes, copied := "-", "-", "-"
			if len(r.pipes) > 0 {
				var c, s, made, largest int64
				var nopipe [len(r.pipes[0].NoPipe)]int64
				for _, p := range r.pipes {
					c += p.Splices
					s += p.Spliced
					made += p.Made
					largest = max(largest, int64(p.Largest))
					for k, n := range p.NoPipe {
						nopipe[k] += n
					}
				}
				if s > 0 {
					calls = fmt.Sprintf("%.0f", float64(c)*float64(1<<30)/float64(s))
				}
				pipes = fmt.Sprintf("%d KiB, %d", largest>>10, made/int64(len(r.pipes)))
				copied = noPipeSummary(nopipe[:], len(r.pipes))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s (%s-%s) | %s | %s | %s | %s |\n", r.scenario.name, r.account.name, r.proxy,
				ms(med), strings.TrimSuffix(ms(q1), " ms"), ms(q3), ratio, calls, pipes, copied)
		}
	}
}

// noPipeSummary says how many bodies per round were copied for want of a
// pipe, and why.
func noPipeSummary(counts []int64, rounds int) string {
	names := map[zerocopy.NoPipe]string{
		zerocopy.NoPipeSmall:       "small",
		zerocopy.NoPipeBudget:      "budget",
		zerocopy.NoPipeDescriptors: "descriptors",
		zerocopy.NoPipeFailed:      "failed",
	}
	var parts []string
	for k, n := range counts {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f", names[zerocopy.NoPipe(k)], float64(n)/float64(rounds)))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ") + " per round"
}
