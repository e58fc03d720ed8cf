//go:build linux

// Command proxybench measures what proxying large downloads costs the proxy
// process: CPU per GiB and the system calls that move the bytes, for
// httputil.ReverseProxy, fastpath (proxy.ReverseProxy under Tracing,
// Metrics and Logger with Listener), nginx proxy_pass and HAProxy with
// option splice-response, each in front of the same nginx upstream serving
// a file by sendfile on loopback:
//
//	.ci/install-tools bench   # nginx-light and haproxy, when missing
//	go run ./tools/cmd/proxybench -rounds 5 -strace-rounds 1
//
// Each proxy runs as its own process pinned to CPU 0, with this process (the
// client) and the upstream on CPU 1. Rounds are interleaved, each starting
// with the next proxy; CPU time is the proxy process's over the downloads
// (the run time of its threads, from /proc/PID/task/*/schedstat), and the
// median and quartiles of the rounds are reported per GiB. System calls
// come from separate runs under strace -f. A proxy whose program is missing
// is skipped, saying so; without nginx the upstream is a Go
// handlers.FileServer instead.
//
// The load scenarios then put ReverseProxy and fastpath alone under load,
// as root and as a plain user (a user id no process runs as, whose pipes the
// kernel limits to fs.pipe-user-pages-soft; run as a plain user, the
// command uses its own): 300 downloads of a 16 MiB file at once, and 48
// downloads of a 32 MiB file at once while 80 slow clients read the big file
// at 50 KB/s each. Their table adds fastpath's pipes: splice calls per GiB,
// the largest pipe, the pipes made, and the bodies copied for want of one.
//
//	go run ./tools/cmd/proxybench -rounds 5 -scenarios concurrent,slow -as root,user
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/asuser"
	"github.com/fastpath-go/fastpath/internal/strace"
	"github.com/fastpath-go/fastpath/internal/zerocopy"
	"github.com/fastpath-go/fastpath/middleware"
	"github.com/fastpath-go/fastpath/proxy"
	"github.com/fastpath-go/fastpath/tools/internal/benchproc"
)

// The proxies compared, in table order; ReverseProxy is the baseline.
const (
	pReverseProxy = "httputil.ReverseProxy"
	pNginx        = "nginx proxy_pass"
	pHAProxy      = "HAProxy splice-response"
	pFastpath     = "fastpath"
)

var proxies = []string{pReverseProxy, pNginx, pHAProxy, pFastpath}

// dataSyscalls are the calls that move bytes through user space; splice and
// sendfile are counted apart.
var dataSyscalls = []string{"read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg"}

func main() {
	child := flag.String("child", "", "internal: run this Go proxy")
	upstream := flag.String("upstream", "", "internal: the upstream URL of a child")
	serveDir := flag.String("serve", "", "internal: serve this directory as the upstream")
	size := flag.Int64("size", 256<<20, "size of the file downloaded, in bytes")
	downloads := flag.Int("downloads", 4, "downloads of the file per round")
	rounds := flag.Int("rounds", 5, "interleaved rounds for the CPU median")
	straceRounds := flag.Int("strace-rounds", 1, "traced runs per proxy for the system calls (0: none)")
	scenarios := flag.String("scenarios", "sequential,concurrent,slow", "what to run: sequential (the four proxies, one download at a time), concurrent, slow, pipesizes (a bare splice loop per pipe size against a copy)")
	loop := flag.Int("loop", -1, "internal: run the bare loop with this pipe size (0: the copy)")
	as := flag.String("as", "root,user", "whom the load scenarios run the Go proxies as: root, user (a plain user)")
	flag.Parse()
	var err error
	switch {
	case *loop >= 0:
		err = runLoop(*loop, *upstream, *size)
	case *child != "":
		err = serveProxy(*child, *upstream)
	case *serveDir != "":
		err = serveFiles(*serveDir)
	default:
		var res *results
		cfg := config{size: *size, downloads: *downloads, rounds: *rounds, straceRounds: *straceRounds, progress: os.Stderr}
		for _, sc := range strings.Split(*scenarios, ",") {
			switch sc {
			case "sequential":
				cfg.sequential = true
			case "concurrent":
				cfg.load = append(cfg.load, concurrentScenario)
			case "slow":
				cfg.load = append(cfg.load, slowScenario)
			case "pipesizes":
				cfg.pipeSizes = true
			default:
				err = fmt.Errorf("-scenarios: unknown %q", sc)
			}
		}
		if err == nil && len(cfg.load) > 0 {
			if os.Geteuid() != 0 {
				*as = "user"
			}
			cfg.accounts, err = accounts(*as)
		}
		if err == nil {
			res, err = run(cfg)
		}
		if err == nil {
			res.write(os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		os.Exit(1)
	}
}

type config struct {
	size         int64
	downloads    int
	rounds       int
	straceRounds int
	progress     io.Writer
	noPin        bool // tests share the machine with other tests
	sequential   bool // the four proxies, one download at a time
	load         []*scenario
	accounts     []account
	pipeSizes    bool // the bare splice loop through each pipe size, against a copy
}

// pipeSizesTotal is what each loop of the pipe sizes scenario moves.
const pipeSizesTotal = 512 << 20

// The load scenarios of the command line.
var (
	concurrentScenario = &scenario{name: "300 concurrent", file: "load16.bin", downloads: 300, size: 16 << 20}
	slowScenario       = &scenario{name: "80 slow + 48", file: "load32.bin", downloads: 48, size: 32 << 20, slow: 80, slowRate: 50000}
)

type result struct {
	name     string
	skipped  string // why, when the proxy could not run
	cpu      []time.Duration
	served   int64 // bytes per round
	calls    strace.Summary
	traced   bool
	traceErr error
}

type results struct {
	cfg       config
	upstream  string
	pinned    bool
	list      []*result
	load      []*loadResult
	pipeSizes []*pipeSizeResult
	took      time.Duration
}

// bench holds what one run needs.
type bench struct {
	cfg      config
	dir      string
	self     string
	userSelf string // a copy of self a plain user can run
	upstream string // URL
	pin      bool
}

func run(cfg config) (*results, error) {
	start := time.Now()
	dir, files, err := benchproc.WorkDir("proxybench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := benchproc.WriteFile(filepath.Join(files, "big.bin"), cfg.size); err != nil {
		return nil, err
	}
	for _, sc := range cfg.load {
		if err := benchproc.WriteFile(filepath.Join(files, sc.file), sc.size); err != nil {
			return nil, err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, dir: dir, self: self, pin: !cfg.noPin && benchproc.PinClient(cfg.progress, "proxybench")}
	if slices.ContainsFunc(cfg.accounts, func(a account) bool { return a.uid >= 0 }) {
		exe, remove, err := asuser.Executable(self)
		if err != nil {
			return nil, err
		}
		defer remove()
		b.userSelf = exe
	}
	res := &results{cfg: cfg, pinned: b.pin}
	stopUp, desc, err := b.startUpstream(files)
	if err != nil {
		return nil, err
	}
	defer stopUp()
	res.upstream = desc
	if cfg.pipeSizes {
		if res.pipeSizes, err = b.runPipeSizes(filepath.Join(files, "big.bin"), pipeSizesTotal); err != nil {
			return nil, err
		}
	}
	if !cfg.sequential {
		res.load, err = b.runLoad(cfg.load, cfg.accounts)
		res.took = time.Since(start)
		return res, err
	}
	for _, name := range proxies {
		r := &result{name: name}
		if why := available(name); why != "" {
			r.skipped = why
			fmt.Fprintf(cfg.progress, "proxybench: skipping %s: %s\n", name, why)
		}
		res.list = append(res.list, r)
	}
	// Each round starts with the next proxy, so none always runs first.
	active := func(round int) []*result {
		return slices.DeleteFunc(benchproc.Rotated(res.list, round), func(r *result) bool { return r.skipped != "" })
	}
	for round := range cfg.rounds {
		for _, r := range active(round) {
			fmt.Fprintf(cfg.progress, "round %d/%d: %s\n", round+1, cfg.rounds, r.name)
			cpu, served, err := b.measure(r.name, "")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.name, err)
			}
			r.cpu = append(r.cpu, cpu)
			r.served = served
		}
	}
	straceErr := strace.Check()
	for round := range cfg.straceRounds {
		for _, r := range active(round) {
			if straceErr != nil {
				r.traceErr = straceErr
				continue
			}
			fmt.Fprintf(cfg.progress, "strace %d/%d: %s\n", round+1, cfg.straceRounds, r.name)
			trace := filepath.Join(dir, "strace.out")
			if _, _, err := b.measure(r.name, trace); err != nil {
				return nil, fmt.Errorf("%s under strace: %w", r.name, err)
			}
			sum, err := strace.ParseFile(trace)
			if err != nil {
				return nil, err
			}
			r.calls, r.traced = sum, true
		}
	}
	if len(cfg.load) > 0 {
		if res.load, err = b.runLoad(cfg.load, cfg.accounts); err != nil {
			return nil, err
		}
	}
	res.took = time.Since(start)
	return res, nil
}

// available returns why a proxy cannot run here, or "".
func available(name string) string {
	prog := map[string]string{pNginx: "nginx", pHAProxy: "haproxy"}[name]
	if prog == "" {
		return ""
	}
	if _, err := exec.LookPath(prog); err != nil {
		return prog + " is not installed (.ci/install-tools bench installs it)"
	}
	return ""
}

// startUpstream starts nginx serving files by sendfile, or a Go FileServer
// when nginx is missing, on CPU 1.
func (b *bench) startUpstream(files string) (stop func(), desc string, err error) {
	addr, err := benchproc.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	var cmd *exec.Cmd
	if available(pNginx) == "" {
		argv, err := benchproc.NginxCommand(b.dir, "upstream", benchproc.NginxFiles(addr, files))
		if err != nil {
			return nil, "", err
		}
		cmd = exec.Command(argv[0], argv[1:]...)
		desc = "nginx " + benchproc.NginxVersion() + " serving by sendfile"
	} else {
		fmt.Fprintln(b.cfg.progress, "proxybench: nginx is not installed; the upstream is a Go handlers.FileServer")
		cmd = exec.Command(b.self, "-serve", files, "-upstream", addr)
		desc = "Go handlers.FileServer (nginx is not installed)"
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	stop = func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }
	if err := benchproc.WaitListening(addr); err != nil {
		stop()
		return nil, "", fmt.Errorf("upstream: %w", err)
	}
	b.upstream = "http://" + addr
	return stop, desc, nil
}

// proxyCommand returns the command line of a proxy listening on addr.
func (b *bench) proxyCommand(name, addr string) ([]string, error) {
	up := strings.TrimPrefix(b.upstream, "http://")
	switch name {
	case pNginx:
		return benchproc.NginxCommand(b.dir, "proxy", fmt.Sprintf(`upstream origin { server %s; keepalive 16; }
	server {
		listen %s;
		location / {
			proxy_pass http://origin;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_max_temp_file_size 0;
		}
	}`, up, addr))
	case pHAProxy:
		conf := fmt.Sprintf(`global
	nbthread 1
	maxconn 1000
defaults
	mode http
	timeout connect 10s
	timeout client 120s
	timeout server 120s
	option http-keep-alive
frontend fe
	bind %s
	option splice-response
	default_backend be
backend be
	option splice-response
	server origin %s
`, addr, up)
		path := filepath.Join(b.dir, "haproxy.cfg")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		return []string{"haproxy", "-db", "-f", path}, nil
	default:
		return []string{b.self, "-child", name, "-upstream", b.upstream + "|" + addr}, nil
	}
}

// measure runs one proxy (under strace when trace is set), downloads the
// file cfg.downloads times through it, and returns the proxy process's CPU
// time for the downloads and the bytes received.
func (b *bench) measure(name, trace string) (time.Duration, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	addr, err := benchproc.FreeAddr()
	if err != nil {
		return 0, 0, err
	}
	argv, err := b.proxyCommand(name, addr)
	if err != nil {
		return 0, 0, err
	}
	if b.pin {
		argv = benchproc.OnCPU(0, argv...)
	}
	var cmd *exec.Cmd
	if trace != "" {
		cmd = strace.Command(ctx, trace, append(slices.Clone(dataSyscalls), "splice", "sendfile"), argv[0], argv[1:]...)
	} else {
		cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // the Go children stop when it closes
	if err != nil {
		return 0, 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	pid := cmd.Process.Pid
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stdin.Close()
		// nginx and haproxy stop on SIGTERM; the proxy itself gets it, not
		// the strace above it.
		syscall.Kill(pid, syscall.SIGTERM)
		return cmd.Wait()
	}
	defer stop()
	if err := benchproc.WaitListening(addr); err != nil {
		return 0, 0, err
	}
	// The measured process is the one strace started (taskset execs it).
	if p, err := benchproc.Descendant(pid); err == nil {
		pid = p
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	// One small request first, so connection setup is not measured.
	if err := download(client, "http://"+addr+"/big.bin", 0, "bytes=0-0"); err != nil {
		return 0, 0, err
	}
	before, err := benchproc.ProcCPU(pid)
	if err != nil {
		return 0, 0, err
	}
	var served int64
	for range b.cfg.downloads {
		if err := download(client, "http://"+addr+"/big.bin", b.cfg.size, ""); err != nil {
			return 0, 0, err
		}
		served += b.cfg.size
	}
	after, err := benchproc.ProcCPU(pid)
	if err != nil {
		return 0, 0, err
	}
	client.CloseIdleConnections()
	if err := stop(); err != nil && trace == "" && !isSignalExit(err) {
		return 0, 0, fmt.Errorf("proxy: %w", err)
	}
	return after - before, served, nil
}

func isSignalExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

func download(c *http.Client, url string, want int64, rng string) error {
	req, _ := http.NewRequest("GET", url, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
		want = 1
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != want || resp.StatusCode/100 != 2 {
		return fmt.Errorf("download: status %d, %d of %d bytes, %v", resp.StatusCode, n, want, err)
	}
	return nil
}

// serveProxy runs a Go proxy until standard input closes. spec is
// "UPSTREAM-URL|LISTEN-ADDR".
func serveProxy(name, spec string) error {
	up, addr, _ := strings.Cut(spec, "|")
	target, err := url.Parse(up)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	rewrite := func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() }
	var h http.Handler
	switch name {
	case pReverseProxy:
		h = &httputil.ReverseProxy{Rewrite: rewrite}
	case pFastpath:
		mp, _, tp := benchproc.Providers()
		defer tp.Shutdown(context.Background())
		defer mp.Shutdown(context.Background())
		tr := &proxy.Transport{MaxIdleConnsPerHost: 16}
		defer tr.CloseIdleConnections()
		h = middleware.Tracing(middleware.WithTracerProvider(tp))(
			middleware.Metrics(middleware.WithMeterProvider(mp))(
				middleware.Logger(slog.New(slog.NewJSONHandler(io.Discard, nil)))(
					proxy.ReverseProxy(&httputil.ReverseProxy{Rewrite: rewrite, Transport: tr}))))
		ln = middleware.Listener(ln)
	default:
		return errors.New("unknown proxy " + name)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(ctx)
	if name == pFastpath {
		raw, _ := json.Marshal(zerocopy.Pipes())
		fmt.Printf("PIPES %s\n", raw)
	}
	return err
}

// serveFiles is the upstream when nginx is missing; it runs until killed.
func serveFiles(dir string) error {
	addr := flag.Lookup("upstream").Value.String()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return (&http.Server{Handler: handlers.FileServer(root), ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

// cpuPerGiB returns the median CPU time per GiB served.
func (r *result) cpuPerGiB() time.Duration {
	return benchproc.PerGiB(benchproc.Median(r.cpu), r.served)
}

// quartiles returns the first and third quartiles of the rounds' CPU time
// per GiB.
func (r *result) quartiles() (q1, q3 time.Duration) {
	q1, q3 = benchproc.Quartiles(r.cpu)
	return benchproc.PerGiB(q1, r.served), benchproc.PerGiB(q3, r.served)
}

func (res *results) find(name string) *result {
	for _, r := range res.list {
		if r.name == name && r.skipped == "" {
			return r
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func (res *results) write(w io.Writer) {
	defer func() {
		if len(res.load) > 0 {
			writeLoad(w, res.load, res.cfg.rounds)
		}
		if len(res.pipeSizes) > 0 {
			writePipeSizes(w, res.pipeSizes, pipeSizesTotal, res.cfg.rounds)
		}
	}()
	if len(res.list) == 0 {
		fmt.Fprintf(w, "upstream %s; took %s\n%s; ", res.upstream, res.took.Round(time.Second), benchproc.Machine())
		if res.pinned {
			fmt.Fprintln(w, "proxy pinned to CPU 0, client and upstream to CPU 1")
		} else {
			fmt.Fprintln(w, "not pinned")
		}
		return
	}
	fmt.Fprintf(w, "%d downloads of a %d MiB file per round through each proxy, upstream %s; CPU: the proxy process, median of %d interleaved rounds; system calls: %d traced run(s); took %s\n",
		res.cfg.downloads, res.cfg.size>>20, res.upstream, res.cfg.rounds, res.cfg.straceRounds, res.took.Round(time.Second))
	pinned := "not pinned"
	if res.pinned {
		pinned = "proxy pinned to CPU 0, client and upstream to CPU 1"
	}
	fmt.Fprintf(w, "%s; %s\n\n", benchproc.Machine(), pinned)
	fmt.Fprintln(w, "| proxy | CPU per GiB (quartiles) | vs ReverseProxy | vs HAProxy | read/write calls | vs ReverseProxy | splice calls (bytes) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	base, hap := res.find(pReverseProxy), res.find(pHAProxy)
	for _, r := range res.list {
		if r.skipped != "" {
			fmt.Fprintf(w, "| %s | skipped: %s | | | | | |\n", r.name, r.skipped)
			continue
		}
		q1, q3 := r.quartiles()
		vsBase, vsHap := "-", "-"
		if base != nil && base.cpuPerGiB() > 0 {
			vsBase = fmt.Sprintf("%.2fx", float64(r.cpuPerGiB())/float64(base.cpuPerGiB()))
		}
		if hap != nil && hap.cpuPerGiB() > 0 {
			vsHap = fmt.Sprintf("%.2fx", float64(r.cpuPerGiB())/float64(hap.cpuPerGiB()))
		}
		rw, rwRatio, sp := "not traced", "-", "-"
		if r.traced {
			n := r.calls.Total(dataSyscalls...).Count
			rw = fmt.Sprint(n)
			if base != nil && base.traced {
				rwRatio = fmt.Sprintf("%.4fx", float64(n)/float64(base.calls.Total(dataSyscalls...).Count))
			}
			s := r.calls["splice"]
			sp = fmt.Sprintf("%d (%d)", s.Count, s.Sum)
		} else if r.traceErr != nil {
			rw = "not traced: " + r.traceErr.Error()
		}
		fmt.Fprintf(w, "| %s | %s (%s-%s) | %s | %s | %s | %s | %s |\n", r.name, ms(r.cpuPerGiB()), strings.TrimSuffix(ms(q1), " ms"), ms(q3), vsBase, vsHap, rw, rwRatio, sp)
	}
}
