//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/middleware"
	"github.com/fastpath-go/fastpath/tools/internal/benchproc"
)

// The stacks, in table order; sBare is the baseline.
const (
	sNginx    = "nginx"
	sBare     = "bare http.FileServer"
	sHandlers = "handlers.FileServer"
	sFull     = "handlers.FileServer + Logger, Metrics, Tracing, Listener (no-op providers)"
	sShipped  = "examples/fileserver as shipped"
)

var stacks = []string{sNginx, sBare, sHandlers, sFull, sShipped}

// fileName is the name of the file served.
const fileName = "small.bin"

// maxTotal bounds a run's measuring time.
const maxTotal = 30 * time.Minute

func main() {
	child := flag.String("child", "", "internal: serve as this stack")
	dir := flag.String("dir", "", "internal: the directory the child serves")
	addr := flag.String("addr", "", "internal: the address the child listens on")
	rounds := flag.Int("rounds", 5, "interleaved rounds; the table shows medians")
	duration := flag.Duration("duration", 5*time.Second, "wrk's -d for each stack in each round")
	warmup := flag.Duration("warmup", time.Second, "an unmeasured wrk run per stack before the rounds")
	size := flag.Int("size", 4096, "size of the file served, in bytes")
	conns := flag.Int("c", 32, "wrk's -c: connections kept open")
	verbose := flag.Bool("v", false, "also print every round's req/s")
	flag.Parse()
	if *child != "" {
		if err := serve(*child, *dir, *addr); err != nil {
			fmt.Fprintln(os.Stderr, "smallfiles child:", err)
			os.Exit(1)
		}
		return
	}
	cfg := config{rounds: *rounds, duration: *duration, warmup: *warmup, size: *size, conns: *conns, progress: os.Stderr}
	res, err := run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "smallfiles:", err)
		os.Exit(1)
	}
	res.write(os.Stdout)
	if *verbose {
		res.writeRounds(os.Stdout)
	}
}

type config struct {
	rounds   int
	duration time.Duration
	warmup   time.Duration
	size     int
	conns    int
	pin      bool // servers on CPU 0, wrk on CPU 1
	progress io.Writer
}

// result is what was measured of one stack.
type result struct {
	Stack   string
	Desc    string    // the row's label
	URL     string    // what wrk asks for
	Skipped string    // why the stack was not measured, if it was not
	Rates   []float64 // req/s, per round
	Ratios  []float64 // req/s over the bare http.FileServer's of the same round
	CPU     []float64 // server CPU time per request, in µs, per round
	CPURat  []float64 // CPU per request over the bare http.FileServer's of the same round
	pid     int
	stop    func()
}

type results struct {
	cfg     config
	stacks  []*result
	started time.Time
	load    [2]string // load averages at the start and the end
	logs    string    // what the shipped command wrote to its log
	notes   []string
}

func run(cfg config) (*results, error) {
	if cfg.rounds < 1 || cfg.duration < time.Second {
		return nil, errors.New("need -rounds >= 1 and -duration >= 1s")
	}
	if total := time.Duration(cfg.rounds*len(stacks)) * (cfg.duration + cfg.warmup); total > maxTotal {
		return nil, fmt.Errorf("%d rounds of %v would take %v; the limit is %v", cfg.rounds, cfg.duration, total, maxTotal)
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, errors.New("wrk is not installed (.ci/install-tools bench installs it); nothing to measure with")
	}
	res := &results{cfg: cfg, started: time.Now().UTC(), load: [2]string{loadAvg(), ""}}
	if benchproc.CanPin() {
		cfg.pin = true
	} else {
		res.notes = append(res.notes, "not pinned: taskset is missing or there is only one CPU")
	}
	res.cfg = cfg
	dir, files, err := benchproc.WorkDir("smallfiles")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := benchproc.WriteFile(filepath.Join(files, fileName), int64(cfg.size)); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	for _, s := range stacks {
		r := &result{Stack: s, Desc: s}
		res.stacks = append(res.stacks, r)
		if err := start(r, cfg, self, dir, files); err != nil {
			res.stopAll()
			return nil, fmt.Errorf("%s: %w", s, err)
		}
		if r.Skipped != "" {
			fmt.Fprintf(cfg.progress, "smallfiles: skipping %s: %s\n", s, r.Skipped)
		}
	}
	defer res.stopAll()
	live := slices.DeleteFunc(slices.Clone(res.stacks), func(r *result) bool { return r.Skipped != "" })
	// Every server must answer the file before anything is timed.
	for _, r := range live {
		if err := check(r.URL, cfg.size); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Stack, err)
		}
	}
	if cfg.warmup > 0 {
		for _, r := range live {
			fmt.Fprintf(cfg.progress, "warmup: %s\n", r.Stack)
			if _, err := runWrk(cfg, r.URL, cfg.warmup); err != nil {
				return nil, fmt.Errorf("%s: %w", r.Stack, err)
			}
		}
	}
	for round := range cfg.rounds {
		rates, cpus := map[string]float64{}, map[string]float64{}
		// Each round starts with the next stack, so no stack always runs first.
		for _, r := range benchproc.Rotated(live, round) {
			fmt.Fprintf(cfg.progress, "round %d/%d: %s\n", round+1, cfg.rounds, r.Stack)
			before, err := benchproc.ProcCPU(r.pid)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.Stack, err)
			}
			w, err := runWrk(cfg, r.URL, cfg.duration)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.Stack, err)
			}
			after, err := benchproc.ProcCPU(r.pid)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.Stack, err)
			}
			r.Rates = append(r.Rates, w.Rate)
			rates[r.Stack] = w.Rate
			cpu := float64(after-before) / float64(time.Microsecond) / float64(max(w.Requests, 1))
			r.CPU = append(r.CPU, cpu)
			cpus[r.Stack] = cpu
		}
		for _, r := range live {
			r.Ratios = append(r.Ratios, rates[r.Stack]/rates[sBare])
			r.CPURat = append(r.CPURat, cpus[r.Stack]/cpus[sBare])
		}
	}
	res.load[1] = loadAvg()
	res.stopAll()
	if b, err := os.ReadFile(filepath.Join(dir, "fileserver.log")); err == nil {
		lines := bytes.Count(b, []byte("\n"))
		res.logs = fmt.Sprintf("%d lines, %d bytes", lines, len(b))
	}
	return res, nil
}

// start starts r's server, or sets r.Skipped.
func start(r *result, cfg config, self, dir, files string) error {
	addr, err := benchproc.FreeAddr()
	if err != nil {
		return err
	}
	r.URL = "http://" + addr + "/" + fileName
	var argv []string
	var stdout io.Writer = os.Stderr
	env := append(os.Environ(), "GOMAXPROCS=1")
	switch r.Stack {
	case sNginx:
		if _, err := exec.LookPath("nginx"); err != nil {
			r.Skipped = "nginx is not installed (.ci/install-tools bench installs nginx-light)"
			return nil
		}
		argv, err = benchproc.NginxCommand(dir, "nginx", benchproc.NginxFiles(addr, files))
		if err != nil {
			return err
		}
		r.Desc = "nginx " + benchproc.NginxVersion() + " (1 worker, sendfile on, access_log off)"
	case sShipped:
		bin := filepath.Join(dir, "fileserver")
		build := exec.Command("go", "build", "-o", bin, "./examples/fileserver")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building ./examples/fileserver (run from the repository root): %w", err)
		}
		argv = []string{bin, "-addr", addr, "-root", files}
		r.URL = "http://" + addr + "/files/" + fileName
		// The request logs go where the command writes them, standard
		// output: here a file, as with `fileserver > access.log`.
		f, err := os.Create(filepath.Join(dir, "fileserver.log"))
		if err != nil {
			return err
		}
		defer f.Close() // the child has its own descriptor
		stdout = f
		// With no OTEL_* variables, nothing leaves the process.
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "OTEL_") })
	default:
		argv = []string{self, "-child", r.Stack, "-dir", files, "-addr", addr}
	}
	if cfg.pin {
		argv = benchproc.OnCPU(0, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout = stdout
	if r.Stack == sShipped {
		cmd.Stderr = io.Discard // its banner
	} else {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	r.pid = cmd.Process.Pid // taskset execs the server
	r.stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	if err := benchproc.WaitListening(addr); err != nil {
		r.stop()
		r.stop = nil
		return err
	}
	return nil
}

func (res *results) stopAll() {
	for _, r := range res.stacks {
		if r.stop != nil {
			r.stop()
			r.stop = nil
		}
	}
}

// check fetches url once and wants the file.
func check(url string, size int) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != 200 || n != int64(size) {
		return fmt.Errorf("GET %s: status %d, %d of %d bytes, %v", url, resp.StatusCode, n, size, err)
	}
	return nil
}

// wrkResult is what runWrk reads from wrk's output.
type wrkResult struct {
	Rate     float64 // Requests/sec
	Requests int64   // "N requests in ..."
	Non2xx   int64   // "Non-2xx or 3xx responses: N"
	Errors   int64   // the sum of "Socket errors: ..."
}

// runWrk runs wrk against url for d, on CPU 1 when pinning.
func runWrk(cfg config, url string, d time.Duration) (wrkResult, error) {
	argv := []string{"wrk", "-t1", fmt.Sprintf("-c%d", cfg.conns), fmt.Sprintf("-d%ds", int(d.Round(time.Second)/time.Second)), url}
	if cfg.pin {
		argv = benchproc.OnCPU(1, argv...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	w, err := parseWrk(out)
	if err != nil {
		return w, fmt.Errorf("%w\n%s", err, out)
	}
	if w.Non2xx > 0 || w.Errors > 0 {
		return w, fmt.Errorf("wrk saw %d non-2xx responses and %d socket errors\n%s", w.Non2xx, w.Errors, out)
	}
	return w, nil
}

var (
	reRate     = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	reRequests = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in `)
	reNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+([0-9]+)`)
	reSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)`)
)

// parseWrk reads wrk's report.
func parseWrk(out []byte) (wrkResult, error) {
	var w wrkResult
	m := reRate.FindSubmatch(out)
	if m == nil {
		return w, errors.New("no Requests/sec in wrk's output")
	}
	w.Rate, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := reRequests.FindSubmatch(out); m != nil {
		w.Requests, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m := reNon2xx.FindSubmatch(out); m != nil {
		w.Non2xx, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m := reSocket.FindSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(string(s), 10, 64)
			w.Errors += n
		}
	}
	return w, nil
}

func (res *results) write(w io.Writer) {
	cfg := res.cfg
	pinned := "servers and wrk not pinned"
	if cfg.pin {
		pinned = "servers pinned to CPU 0 (Go with GOMAXPROCS=1, nginx with 1 worker), wrk -t1 to CPU 1"
	}
	fmt.Fprintf(w, "GET of a %d-byte file, wrk -t1 -c%d -d%v per stack per round, median of %d interleaved rounds; started %s\n",
		cfg.size, cfg.conns, cfg.duration, cfg.rounds, res.started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "%s; %s; load average at start %s, at end %s\n\n", benchproc.Machine(), pinned, res.load[0], res.load[1])
	writeTable(w, res.stacks)
	for _, r := range res.stacks {
		if r.Skipped != "" {
			fmt.Fprintf(w, "\n%s: skipped: %s\n", r.Stack, r.Skipped)
		}
	}
	if res.logs != "" {
		fmt.Fprintf(w, "\nexamples/fileserver's request log (its standard output, to a file): %s\n", res.logs)
	}
	for _, n := range res.notes {
		fmt.Fprintln(w, n)
	}
}

// writeTable prints the markdown table of the measured stacks: req/s, and
// the server's CPU time per request, which a busy machine disturbs less
// (it takes the server's time slices, not its work per request).
func writeTable(w io.Writer, rs []*result) {
	fmt.Fprintln(w, "| stack | req/s | vs bare http.FileServer | server CPU per request | vs bare http.FileServer |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, r := range rs {
		if r.Skipped != "" {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %.2fx | %.0f µs | %.2fx |\n", r.Desc, thousands(benchproc.Median(r.Rates)), benchproc.Median(r.Ratios), benchproc.Median(r.CPU), benchproc.Median(r.CPURat))
	}
}

// thousands formats x rounded to the unit, with commas between thousands.
func thousands(x float64) string {
	s := strconv.FormatInt(int64(x+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func (res *results) writeRounds(w io.Writer) {
	fmt.Fprintln(w)
	for _, r := range res.stacks {
		if r.Skipped != "" {
			continue
		}
		rates := make([]string, len(r.Rates))
		for i, x := range r.Rates {
			rates[i] = fmt.Sprintf("%.0f req/s (%.2fx) %.1f µs (%.2fx)", x, r.Ratios[i], r.CPU[i], r.CPURat[i])
		}
		fmt.Fprintf(w, "%s: %s\n", r.Stack, strings.Join(rates, ", "))
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// serve runs one Go stack on addr until SIGTERM.
func serve(stack, dir, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var h http.Handler
	switch stack {
	case sBare:
		h = http.FileServer(http.Dir(dir))
	case sHandlers, sFull:
		root, err := os.OpenRoot(dir)
		if err != nil {
			return err
		}
		defer root.Close()
		h = handlers.FileServer(root)
		if stack == sFull {
			logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
			h = middleware.Tracing(middleware.WithTracerProvider(tracenoop.NewTracerProvider()))(
				middleware.Metrics(middleware.WithMeterProvider(metricnoop.NewMeterProvider()))(
					middleware.Logger(logger)(h)))
			ln = middleware.Listener(ln)
		}
	default:
		return errors.New("unknown stack " + stack)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}
