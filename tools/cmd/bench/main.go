//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fastpath-go/fastpath/internal/strace"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/middleware"
	"github.com/fastpath-go/fastpath/tools/internal/benchproc"
)

// stacks are the servers compared, in table order; the first is the baseline.
var stacks = []string{"net/http", "naive wrapper", "otelhttp", "fastpath"}

// ioSyscalls are the system calls that can move response bytes.
var ioSyscalls = []string{"read", "write", "writev", "sendfile", "splice", "pread64", "pwrite64", "readv", "copy_file_range"}

func main() {
	child := flag.String("child", "", "internal: serve as this stack")
	file := flag.String("file", "", "internal: the file the child serves")
	size := flag.Int64("size", 256<<20, "size of the file served, in bytes")
	downloads := flag.Int("downloads", 4, "downloads of the file per round")
	rounds := flag.Int("rounds", 5, "interleaved rounds for the CPU median")
	straceRounds := flag.Int("strace-rounds", 3, "traced runs per stack for the system call median")
	verbose := flag.Bool("v", false, "also print each stack's I/O system calls one by one")
	flag.Parse()
	if *child != "" {
		if err := serve(*child, *file); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	pin := benchproc.PinClient(os.Stderr, "bench")
	res, err := run(config{pin: pin, size: *size, downloads: *downloads, rounds: *rounds, straceRounds: *straceRounds, progress: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	res.write(os.Stdout)
	if *verbose {
		res.writeCalls(os.Stdout)
	}
}

type config struct {
	pin          bool // run the server on CPU 0 and the client on CPU 1
	size         int64
	downloads    int
	rounds       int
	straceRounds int
	progress     io.Writer
}

// result is what was measured of one stack.
type result struct {
	Stack       string
	CPU         []time.Duration // per round
	Syscalls    int64           // median I/O system calls of the strace runs, -1 if not traced
	SyscallRuns []int64         // I/O system calls of each strace run
	Calls       strace.Summary  // the last strace run, per system call
	Sendfile    int64           // bytes sendfile(2) returned in the strace run
	Reported    int64           // response bytes the stack reported, -1 if it reports none
	Served      int64           // response bytes the client received per round
}

type results struct {
	cfg      config
	stacks   []*result
	straceOK error
}

func run(cfg config) (*results, error) {
	dir, err := os.MkdirTemp("", "fastpath-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "big.bin")
	if err := benchproc.WriteFile(file, cfg.size); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	res := &results{cfg: cfg, straceOK: strace.Check()}
	for _, s := range stacks {
		res.stacks = append(res.stacks, &result{Stack: s, Syscalls: -1})
	}
	// Warm the page cache so every stack reads the file from memory.
	if err := benchproc.Warm(file); err != nil {
		return nil, err
	}
	// Each round starts with the next stack, so no stack always runs first.
	for round := range cfg.rounds {
		for _, r := range benchproc.Rotated(res.stacks, round) {
			fmt.Fprintf(cfg.progress, "round %d/%d: %s\n", round+1, cfg.rounds, r.Stack)
			m, err := measure(self, r.Stack, file, cfg, "")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.Stack, err)
			}
			r.CPU = append(r.CPU, m.cpu)
			r.Reported, r.Served = m.reported, m.served
		}
	}
	// How many sendfile calls a transfer takes depends on how much room the
	// socket buffer has at each call, which varies from run to run; the
	// median of several traced runs is reported.
	for round := range cfg.straceRounds {
		if res.straceOK != nil {
			break
		}
		for _, r := range benchproc.Rotated(res.stacks, round) {
			fmt.Fprintf(cfg.progress, "strace %d/%d: %s\n", round+1, cfg.straceRounds, r.Stack)
			trace := filepath.Join(dir, "strace.out")
			if _, err := measure(self, r.Stack, file, cfg, trace); err != nil {
				return nil, fmt.Errorf("%s under strace: %w", r.Stack, err)
			}
			sum, err := strace.ParseFile(trace)
			if err != nil {
				return nil, err
			}
			r.SyscallRuns = append(r.SyscallRuns, sum.Total(ioSyscalls...).Count)
			r.Calls = sum
			r.Sendfile = sum["sendfile"].Sum
		}
	}
	for _, r := range res.stacks {
		if len(r.SyscallRuns) > 0 {
			r.Syscalls = benchproc.Median(r.SyscallRuns)
		}
	}
	return res, nil
}

// measurement is one child's run.
type measurement struct {
	cpu      time.Duration
	reported int64
	served   int64
}

// measure starts a child serving stack (under strace when trace is set),
// downloads the file cfg.downloads times, and returns the child's CPU time
// for the downloads and the bytes it reported.
func measure(self, stack, file string, cfg config, trace string) (measurement, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	argv := []string{self, "-child", stack, "-file", file}
	if cfg.pin {
		// The server runs on CPU 0 and this process, the client, on CPU 1,
		// so the two do not trade places mid-measurement.
		argv = benchproc.OnCPU(0, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if trace != "" {
		cmd = strace.Command(ctx, trace, ioSyscalls, argv[0], argv[1:]...)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return measurement{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return measurement{}, err
	}
	if err := cmd.Start(); err != nil {
		return measurement{}, err
	}
	defer cmd.Wait()
	defer stdin.Close()
	var addr, control string
	if _, err := fmt.Fscanf(bufio.NewReader(stdout), "ADDR %s CONTROL %s\n", &addr, &control); err != nil {
		return measurement{}, fmt.Errorf("child did not start: %w", err)
	}
	var before, after childReport
	if err := getJSON("http://"+control+"/report", &before); err != nil {
		return measurement{}, err
	}
	client := &http.Client{Transport: &http.Transport{}}
	var served int64
	for range cfg.downloads {
		resp, err := client.Get("http://" + addr + "/big.bin")
		if err != nil {
			return measurement{}, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || n != cfg.size {
			return measurement{}, fmt.Errorf("download: status %d, %d of %d bytes, %v", resp.StatusCode, n, cfg.size, err)
		}
		served += n
	}
	client.CloseIdleConnections()
	// The client can finish before the server's handler returns; the child's
	// report waits for every request to complete.
	if err := getJSON(fmt.Sprintf("http://%s/report?requests=%d", control, cfg.downloads), &after); err != nil {
		return measurement{}, err
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return measurement{}, fmt.Errorf("child: %w", err)
	}
	return measurement{cpu: after.CPU - before.CPU, reported: after.Reported, served: served}, nil
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// childReport is what a child says about itself on its control listener.
type childReport struct {
	CPU      time.Duration // user + system time so far
	Reported int64         // response bytes the stack reported, -1 if none
}

// serve runs one stack until standard input closes.
func serve(stack, file string) error {
	var (
		reported func() int64
		done     = make(chan struct{}, 1024)
	)
	files := benchproc.ServeFile(file)
	var h http.Handler
	var ln net.Listener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	switch stack {
	case "net/http":
		h = files
		reported = func() int64 { return -1 }
	case "naive wrapper":
		var total int64
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cw := &testutil.CountingWriter{ResponseWriter: w}
			files.ServeHTTP(cw, r)
			total += cw.N
		})
		reported = func() int64 { return total }
	case "otelhttp":
		mp, reader, tp := benchproc.Providers()
		defer mp.Shutdown(context.Background())
		defer tp.Shutdown(context.Background())
		h = otelhttp.NewHandler(files, "server", otelhttp.WithMeterProvider(mp), otelhttp.WithTracerProvider(tp))
		reported = func() int64 { return responseBytes(reader) }
	case "fastpath":
		mp, reader, tp := benchproc.Providers()
		defer mp.Shutdown(context.Background())
		defer tp.Shutdown(context.Background())
		logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
		h = middleware.Tracing(middleware.WithTracerProvider(tp))(
			middleware.Metrics(middleware.WithMeterProvider(mp))(
				middleware.Logger(logger)(files)))
		ln = middleware.Listener(ln)
		reported = func() int64 { return responseBytes(reader) }
	default:
		return errors.New("unknown stack " + stack)
	}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		h.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: counted, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)

	cln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	completed := 0
	control := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var want int
		fmt.Sscan(r.URL.Query().Get("requests"), &want)
		for ; completed < want; completed++ {
			<-done
		}
		json.NewEncoder(w).Encode(childReport{CPU: cpuTime(), Reported: reported()})
	})}
	go control.Serve(cln)
	fmt.Printf("ADDR %s CONTROL %s\n", ln.Addr(), cln.Addr())
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	control.Shutdown(ctx)
	return srv.Shutdown(ctx)
}

// responseBytes sums http.server.response.body.size over every data point.
func responseBytes(reader *sdkmetric.ManualReader) int64 {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		return -1
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[int64]); ok && m.Name == "http.server.response.body.size" {
				for _, dp := range h.DataPoints {
					n += dp.Sum
				}
			}
		}
	}
	return n
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerGiB returns the median CPU time per GiB served.
func (r *result) cpuPerGiB() time.Duration {
	return benchproc.PerGiB(benchproc.Median(r.CPU), r.Served)
}

// quartiles returns the first and third quartiles of the rounds' CPU time
// per GiB: the spread the median comes from.
func (r *result) quartiles() (q1, q3 time.Duration) {
	q1, q3 = benchproc.Quartiles(r.CPU)
	return benchproc.PerGiB(q1, r.Served), benchproc.PerGiB(q3, r.Served)
}

func (res *results) write(w io.Writer) {
	base := res.stacks[0]
	fmt.Fprintf(w, "%d downloads of a %d MiB file per round over loopback; CPU: median of %d interleaved rounds; system calls: median of %d traced runs\n",
		res.cfg.downloads, res.cfg.size>>20, res.cfg.rounds, res.cfg.straceRounds)
	pinned := "server and client not pinned"
	if res.cfg.pin {
		pinned = "server pinned to CPU 0, client to CPU 1"
	}
	fmt.Fprintf(w, "%s; %s\n\n", benchproc.Machine(), pinned)
	fmt.Fprintln(w, "| stack | server CPU per GiB (quartiles) | vs net/http | I/O syscalls | vs net/http | sendfile bytes | bytes it reported |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range res.stacks {
		sys, sysRatio, sf := "not traced", "-", "-"
		if r.Syscalls >= 0 {
			sys = fmt.Sprint(r.Syscalls)
			sysRatio = fmt.Sprintf("%.2fx", float64(r.Syscalls)/float64(base.Syscalls))
			sf = fmt.Sprint(r.Sendfile)
		}
		rep := "-"
		if r.Reported >= 0 {
			rep = fmt.Sprint(r.Reported)
			if r.Reported == r.Served {
				rep += " (correct)"
			} else {
				rep += fmt.Sprintf(" (served %d)", r.Served)
			}
		}
		q1, q3 := r.quartiles()
		fmt.Fprintf(w, "| %s | %.0f ms (%.0f-%.0f) | %.2fx | %s | %s | %s | %s |\n", r.Stack,
			float64(r.cpuPerGiB())/float64(time.Millisecond), float64(q1)/float64(time.Millisecond), float64(q3)/float64(time.Millisecond),
			float64(r.cpuPerGiB())/float64(base.cpuPerGiB()), sys, sysRatio, sf, rep)
	}
	if res.straceOK != nil {
		fmt.Fprintf(w, "\nsystem calls not counted: %v\n", res.straceOK)
	}
}

// writeCalls prints every round's figures and the last strace run's I/O
// system calls, per stack.
func (res *results) writeCalls(w io.Writer) {
	for _, r := range res.stacks {
		fmt.Fprintf(w, "\n%s: CPU per round %v; I/O syscalls per traced run %v;", r.Stack, r.CPU, r.SyscallRuns)
		fmt.Fprint(w, r.Calls.Details(ioSyscalls...))
	}
	fmt.Fprintln(w)
}
