//go:build linux

package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fastpath-go/fastpath/internal/strace"
	"github.com/fastpath-go/fastpath/tools/internal/benchproc"
)

// target is issue 20's: kernel TLS at most this fraction of crypto/tls's
// server CPU per GiB, in the same run.
const target = 0.6

// find returns the row of stack, or nil when it was skipped.
func (p *place) find(stack string) *row {
	for _, o := range p.Rows {
		if o.Stack == stack && o.Skipped == "" {
			return o
		}
	}
	return nil
}

// cpuPerGiB returns the median CPU time per GiB served.
func (r *row) cpuPerGiB() time.Duration {
	return benchproc.PerGiB(benchproc.Median(r.CPU), r.Served)
}

// vs returns the median over the rounds of r's CPU time over base's in the
// same round: the rounds share the machine's mood, so the ratio of a round
// moves less than either figure.
func (r *row) vs(base *row) float64 {
	var ratios []float64
	for i := range min(len(r.CPU), len(base.CPU)) {
		if base.CPU[i] > 0 && base.Served > 0 && r.Served > 0 {
			ratios = append(ratios, float64(benchproc.PerGiB(r.CPU[i], r.Served))/float64(benchproc.PerGiB(base.CPU[i], base.Served)))
		}
	}
	return benchproc.Median(ratios)
}

// median returns the traced run with the median number of I/O system calls
// (the lower of the middle two), and whether there is one.
func (r *row) median() (tracedRun, bool) {
	if len(r.Traced) == 0 {
		return tracedRun{}, false
	}
	s := slices.Clone(r.Traced)
	slices.SortStableFunc(s, func(a, b tracedRun) int {
		return cmp.Compare(a.Calls.Total(ioSyscalls...).Count, b.Calls.Total(ioSyscalls...).Count)
	})
	return s[(len(s)-1)/2], true
}

// write prints the place's header and table.
func (p *place) write(w io.Writer, cfg config) {
	fmt.Fprintf(w, "## %s\n\n", p.title())
	if p.Machine != "" {
		pinned := "server and client not pinned"
		if p.Pinned {
			pinned = "server pinned to CPU 0, client to CPU 1"
		}
		about := []string{p.Machine}
		if p.Nginx != "" {
			about = append(about, "nginx "+p.Nginx)
		}
		fmt.Fprintf(w, "%s; %s\n", strings.Join(about, ", "), pinned)
		if p.Emulation != "" {
			fmt.Fprintf(w, "the guest's CPU is %s: its figures compare the rows of this run, they are not the host's\n", p.Emulation)
		}
		calls := "system calls: not counted (" + p.StraceErr + ")"
		if p.StraceErr == "" {
			calls = fmt.Sprintf("system calls: strace -f, per download, median of %d traced run(s) minus a traced start-up", cfg.straceRounds)
		}
		fmt.Fprintf(w, "%d download(s) of a %s file per round over loopback, each checked byte for byte; CPU: the server process, median of %d interleaved rounds; %s\n",
			cfg.downloads, sizeName(cfg.size), cfg.rounds, calls)
		took := "took " + p.Took.Round(time.Second).String()
		if p.Boot > 0 {
			took += fmt.Sprintf(" (boot %s)", p.Boot.Round(100*time.Millisecond))
		}
		fmt.Fprintf(w, "%s; load average (1 min) of the machine running it: %s at the start, %s at the end\n\n", took, p.LoadStart, p.LoadEnd)
	}
	p.writeTable(w)
	p.writeNotes(w)
	fmt.Fprintln(w)
}

func (p *place) title() string {
	if p.Where == whereGuest {
		if p.Kernel != "" {
			return "guest: " + p.Kernel + " under QEMU (emulated CPU)"
		}
		return "guest"
	}
	return "local: this machine's kernel"
}

// writeTable writes the markdown table.
func (p *place) writeTable(w io.Writer) {
	fmt.Fprintln(w, "| server | TLS | server CPU per GiB (quartiles) | vs crypto/tls | I/O syscalls per download | of them | sendfile bytes per download | kernel TLS sockets (TX/RX) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	base := p.find(sCryptoTLS)
	var baseCalls float64
	if base != nil {
		if run, ok := base.median(); ok {
			baseCalls = float64(run.Calls.Total(ioSyscalls...).Count) / float64(run.Downloads)
		}
	}
	for _, r := range p.Rows {
		if r.Skipped != "" {
			fmt.Fprintf(w, "| %s | skipped: %s | | | | | | |\n", r.Stack, r.Skipped)
			continue
		}
		cpu := r.cpuPerGiB()
		q1, q3 := benchproc.Quartiles(r.CPU)
		vs := "-"
		if base != nil {
			vs = fmt.Sprintf("%.2fx", r.vs(base))
		}
		calls, of, sendfile := "not traced", "", "-"
		if run, ok := r.median(); ok {
			total := run.Calls.Total(ioSyscalls...).Count
			calls = perDownload(total, run.Downloads)
			if baseCalls > 0 && r != base {
				calls += fmt.Sprintf(" (%s)", ratio(float64(total)/float64(run.Downloads), baseCalls))
			}
			of = topCalls(run.Calls, run.Downloads, 3)
			sendfile = perDownload(run.Calls["sendfile"].Sum, run.Downloads)
		}
		sockets := "-"
		if r.KernelTX >= 0 {
			sockets = fmt.Sprintf("%d/%d", r.KernelTX, r.KernelRX)
		}
		fmt.Fprintf(w, "| %s | %s | %s ms (%s-%s) | %s | %s | %s | %s | %s |\n", r.Stack, r.TLS,
			ms(cpu), ms(benchproc.PerGiB(q1, r.Served)), ms(benchproc.PerGiB(q3, r.Served)), vs, calls, of, sendfile, sockets)
	}
}

// writeNotes says whether kernel TLS met the target and what the Go
// servers report of themselves.
func (p *place) writeNotes(w io.Writer) {
	base := p.find(sCryptoTLS)
	fmt.Fprintln(w)
	for _, s := range []string{sKTLS, sNginx} {
		r := p.find(s)
		if r == nil || base == nil {
			continue
		}
		v := r.vs(base)
		verdict := "met"
		if v > target {
			verdict = "not met"
		}
		fmt.Fprintf(w, "%s: %.2fx crypto/tls's CPU per GiB (target <= %.1fx: %s)\n", s, v, target, verdict)
	}
	for _, r := range p.Rows {
		if r.Child == nil {
			continue
		}
		var conns []string
		for _, k := range slices.Sorted(maps.Keys(r.Child.Connections)) {
			conns = append(conns, fmt.Sprintf("%d %s", r.Child.Connections[k], k))
		}
		line := fmt.Sprintf("%s, last round: requests by connection: %s", r.Stack, strings.Join(conns, ", "))
		if r.Child.SendfileBytes >= 0 {
			line += fmt.Sprintf("; fastpath recorded %d response bytes, %d of them by sendfile", r.Child.ResponseBytes, r.Child.SendfileBytes)
		}
		fmt.Fprintln(w, line)
	}
}

// writeDetails prints every round's CPU time and the median traced run's
// calls, errors and bytes, per stack.
func (p *place) writeDetails(w io.Writer) {
	for _, r := range p.Rows {
		if r.Skipped != "" {
			continue
		}
		fmt.Fprintf(w, "%s, %s: CPU per round %v;", p.Where, r.Stack, r.CPU)
		if run, ok := r.median(); ok {
			fmt.Fprintf(w, " traced %d download(s):", run.Downloads)
			fmt.Fprint(w, run.Calls.Details(ioSyscalls...))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// topCalls names the n system calls made most, per download.
func topCalls(calls strace.Summary, downloads, n int) string {
	var names []string
	for _, name := range ioSyscalls {
		if calls[name].Count > 0 {
			names = append(names, name)
		}
	}
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(calls[b].Count, calls[a].Count) })
	var parts []string
	for _, name := range names[:min(n, len(names))] {
		parts = append(parts, perDownload(calls[name].Count, downloads)+" "+name)
	}
	return strings.Join(parts, ", ")
}

// perDownload writes n per download, with thousands separated: whole when
// it divides, else to one decimal.
func perDownload(n int64, downloads int) string {
	if downloads <= 0 {
		return "-"
	}
	if n%int64(downloads) == 0 {
		return thousands(n / int64(downloads))
	}
	return strconv.FormatFloat(float64(n)/float64(downloads), 'f', 1, 64)
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ratio writes v/base: "0.42x" down to 0.1, below that as the fraction
// "1/150", which reads better than 0.0067x.
func ratio(v, base float64) string {
	switch {
	case base <= 0:
		return "-"
	case v <= 0:
		return "0"
	case v/base >= 0.1:
		return fmt.Sprintf("%.2fx", v/base)
	}
	return fmt.Sprintf("1/%.0f", base/v)
}

func ms(d time.Duration) string { return thousands(d.Round(time.Millisecond).Milliseconds()) }

func sizeName(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d-byte", n)
}
