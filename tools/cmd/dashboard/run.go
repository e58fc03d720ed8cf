package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/middleware"
	"github.com/fastpath-go/fastpath/tools/deploy"
)

// Sizes of the files served.
const (
	bigSize   = 8 << 20
	thumbSize = 2 << 10
	thumbs    = 16
)

// scrapeInterval is Prometheus's scrape and rule evaluation interval, and
// rateInterval what the dashboard's $__rate_interval becomes: four scrapes
// and more, as Grafana makes it, short enough for the phases to show.
const (
	scrapeInterval = 5 * time.Second
	rateInterval   = "1m"
	step           = 10 * time.Second
)

func run(ctx context.Context, out string, phase time.Duration) error {
	dir, err := os.MkdirTemp("", "fastpath-dashboard-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	writeFile := func(name string, size int) error {
		data := make([]byte, size)
		rng := rand.New(rand.NewPCG(uint64(size), 7))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		return os.WriteFile(filepath.Join(root, name), data, 0o644)
	}
	if err := writeFile("big.bin", bigSize); err != nil {
		return err
	}
	for i := range thumbs {
		if err := writeFile(fmt.Sprintf("thumb-%02d.jpg", i), thumbSize); err != nil {
			return err
		}
	}

	example, err := startExample(ctx, dir, root)
	if err != nil {
		return err
	}
	defer example.stop()
	inc, err := startIncident(root)
	if err != nil {
		return err
	}
	defer inc.close()
	prom, err := startPrometheus(ctx, dir, []string{example.metrics, inc.metrics})
	if err != nil {
		return err
	}
	defer prom.stop()
	fmt.Fprintf(os.Stderr, "example %s (metrics %s), incident server %s (metrics %s), prometheus %s\n",
		example.base, example.metrics, inc.base, inc.metrics, prom.base)

	// Let Prometheus scrape an idle start, then drive traffic through the
	// three phases.
	if err := sleep(ctx, 2*scrapeInterval); err != nil {
		return err
	}
	start := time.Now()
	tctx, stopTraffic := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var stats trafficStats
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); exampleTraffic(tctx, example.base, uint64(i), &stats) }()
	}
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); incidentTraffic(tctx, inc.base, uint64(10+i), &stats) }()
	}
	var phases [4]time.Time
	phases[0] = start
	err = func() error {
		if err := sleep(ctx, phase); err != nil {
			return err
		}
		inc.lost.Store(true)
		phases[1] = time.Now()
		fmt.Fprintln(os.Stderr, "phase 2: /downloads/* loses the fast path")
		if err := sleep(ctx, phase); err != nil {
			return err
		}
		inc.lost.Store(false)
		phases[2] = time.Now()
		fmt.Fprintln(os.Stderr, "phase 3: /downloads/* restored")
		return sleep(ctx, phase)
	}()
	stopTraffic()
	wg.Wait()
	phases[3] = time.Now()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "traffic: %d requests, %d aborted on purpose, %d errors\n", stats.requests.Load(), stats.aborted.Load(), stats.errors.Load())
	// Two more scrapes, so the last requests are in.
	if err := sleep(ctx, 2*scrapeInterval); err != nil {
		return err
	}

	ddir, err := deploy.Dir()
	if err != nil {
		return err
	}
	d, err := deploy.LoadDashboard(filepath.Join(ddir, deploy.DashboardFile))
	if err != nil {
		return err
	}
	qs, err := d.Queries()
	if err != nil {
		return err
	}
	vars := map[string]string{"job": "fastpath", "__rate_interval": rateInterval, "__interval": step.String()}
	var results []panelResult
	for _, q := range qs {
		if strings.HasPrefix(q.Panel, "variable ") {
			continue
		}
		expr, err := deploy.Expand(q.Expr, vars)
		if err != nil {
			return err
		}
		series, err := prom.queryRange(ctx, expr, start, phases[3], step)
		if err != nil {
			return fmt.Errorf("%s: %w", q.Name(), err)
		}
		if len(series) == 0 {
			return fmt.Errorf("%s returned no series over the run: %s", q.Name(), expr)
		}
		results = append(results, panelResult{query: q, series: series})
	}
	if err := report(ctx, prom, phases); err != nil {
		return err
	}
	if err := render(out, d.Title, results, start, phases); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", out)
	return nil
}

// sleep waits for d or for ctx. It paces the run; nothing waits on it to
// synchronise.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// example is examples/fileserver, built and run as a user would.
type example struct {
	cmd           *exec.Cmd
	base, metrics string
	done          chan error
}

func startExample(ctx context.Context, dir, root string) (*example, error) {
	bin := filepath.Join(dir, "fileserver")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/fastpath-go/fastpath/examples/fileserver")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	e := &example{cmd: exec.Command(bin, "-addr", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0", "-root", root), done: make(chan error, 1)}
	e.cmd.Stdout = io.Discard // the request log: not needed here
	stderr, err := e.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := e.cmd.Start(); err != nil {
		return nil, err
	}
	files := regexp.MustCompile(`^  files:   (http://[^/]+)/files/`)
	metrics := regexp.MustCompile(`^  metrics: (http://\S+)/metrics$`)
	sc := bufio.NewScanner(stderr)
	for (e.base == "" || e.metrics == "") && sc.Scan() {
		if m := files.FindStringSubmatch(sc.Text()); m != nil {
			e.base = m[1]
		}
		if m := metrics.FindStringSubmatch(sc.Text()); m != nil {
			e.metrics = strings.TrimPrefix(m[1], "http://")
		}
	}
	go func() { io.Copy(io.Discard, stderr); e.done <- e.cmd.Wait() }()
	if e.base == "" || e.metrics == "" {
		e.stop()
		return nil, errors.New("the example did not print its addresses")
	}
	return e, nil
}

func (e *example) stop() {
	e.cmd.Process.Signal(os.Interrupt)
	select {
	case <-e.done:
	case <-time.After(time.Minute):
		e.cmd.Process.Kill()
		<-e.done
	}
}

// incident is the server whose /downloads/* route loses the fast path
// while lost is set.
type incident struct {
	srv, msrv     *http.Server
	base, metrics string
	lost          atomic.Bool
	mp            *sdkmetric.MeterProvider
}

func startIncident(root string) (*incident, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	inc := &incident{mp: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	files := handlers.FileServer(r)
	// The "harmless" change: a wrapper that counts bytes and hides
	// io.ReaderFrom, in front of the file server while lost is set.
	lossy := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if inc.lost.Load() {
			w = &testutil.CountingWriter{ResponseWriter: w}
		}
		files.ServeHTTP(w, req)
	})
	router := chi.NewRouter()
	router.Use(
		middleware.Tracing(middleware.WithTracerProvider(sdktrace.NewTracerProvider())),
		middleware.Metrics(middleware.WithMeterProvider(inc.mp)),
		middleware.Logger(slog.New(slog.NewJSONHandler(io.Discard, nil))),
	)
	router.Handle("/downloads/*", http.StripPrefix("/downloads", lossy))
	router.Handle("/thumbs/*", http.StripPrefix("/thumbs", files))
	// An API route that fails one request in five, so the 5xx panel has
	// something to show.
	var calls atomic.Int64
	router.Get("/api/items", func(w http.ResponseWriter, req *http.Request) {
		if calls.Add(1)%5 == 0 {
			http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"items":[]}`+"\n")
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return nil, err
	}
	inc.base, inc.metrics = "http://"+ln.Addr().String(), mln.Addr().String()
	inc.srv = &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	inc.msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go inc.srv.Serve(middleware.Listener(ln))
	go inc.msrv.Serve(mln)
	return inc, nil
}

func (inc *incident) close() {
	inc.srv.Close()
	inc.msrv.Close()
	inc.mp.Shutdown(context.Background())
}

// trafficStats counts what the clients did.
type trafficStats struct {
	requests, aborted, errors atomic.Int64
}

// client has short timeouts: every request here is on loopback.
var client = &http.Client{Timeout: time.Minute}

// get fetches url with a Range header when rng is not empty, and reads at
// most limit bytes of the body (all of it when limit < 0) before closing.
func get(ctx context.Context, url, rng string, limit int64, st *trafficStats) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		st.errors.Add(1)
		return
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			st.errors.Add(1)
		}
		return
	}
	st.requests.Add(1)
	if limit >= 0 {
		io.CopyN(io.Discard, resp.Body, limit)
		st.aborted.Add(1)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
}

// exampleTraffic is a mix on the example: full downloads, ranges, small
// files, 404s and downloads abandoned after 1 MiB.
func exampleTraffic(ctx context.Context, base string, seed uint64, st *trafficStats) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for ctx.Err() == nil {
		switch n := rng.IntN(20); {
		case n < 6:
			get(ctx, base+"/files/big.bin", "", -1, st)
		case n < 10:
			off := rng.IntN(bigSize - 1<<20)
			get(ctx, base+"/files/big.bin", fmt.Sprintf("bytes=%d-%d", off, off+1<<20-1), -1, st)
		case n < 17:
			get(ctx, fmt.Sprintf("%s/files/thumb-%02d.jpg", base, rng.IntN(thumbs)), "", -1, st)
		case n < 19:
			get(ctx, base+"/files/missing.bin", "", -1, st)
		default:
			get(ctx, base+"/files/big.bin", "", 1<<20, st)
		}
		sleep(ctx, time.Duration(50+rng.IntN(100))*time.Millisecond)
	}
}

// incidentTraffic downloads from /downloads/*, fetches thumbnails and calls
// the API.
func incidentTraffic(ctx context.Context, base string, seed uint64, st *trafficStats) {
	rng := rand.New(rand.NewPCG(seed, 2))
	for ctx.Err() == nil {
		switch n := rng.IntN(6); {
		case n < 2:
			get(ctx, base+"/downloads/big.bin", "", -1, st)
		case n == 2:
			get(ctx, base+"/api/items", "", -1, st)
		default:
			get(ctx, fmt.Sprintf("%s/thumbs/thumb-%02d.jpg", base, rng.IntN(thumbs)), "", -1, st)
		}
		sleep(ctx, time.Duration(50+rng.IntN(100))*time.Millisecond)
	}
}

// promServer is a Prometheus server scraping the two servers.
type promServer struct {
	cmd  *exec.Cmd
	base string
	done chan error
	log  *testutil.LockedBuffer
}

func startPrometheus(ctx context.Context, dir string, targets []string) (*promServer, error) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return nil, fmt.Errorf("prometheus not found (Debian's prometheus package): %w", err)
	}
	ddir, err := deploy.Dir()
	if err != nil {
		return nil, err
	}
	quoted := make([]string, len(targets))
	for i, t := range targets {
		quoted[i] = strconv.Quote(t)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: %s
  evaluation_interval: %s
rule_files:
  - %s
scrape_configs:
  - job_name: fastpath
    static_configs:
      - targets: [%s]
`, scrapeInterval, scrapeInterval, strconv.Quote(filepath.Join(ddir, deploy.RulesFile)), strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	// A free port for Prometheus, which takes an address, not a listener.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &promServer{base: "http://" + addr, done: make(chan error, 1), log: new(testutil.LockedBuffer)}
	p.cmd = exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr,
		"--enable-feature=exemplar-storage")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	for deadline := time.Now().Add(time.Minute); ; {
		resp, err := http.Get(p.base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("prometheus did not become ready:\n%s", p.log.String())
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			p.stop()
			return nil, err
		}
	}
}

func (p *promServer) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// series is one series of a range query.
type series struct {
	labels map[string]string
	times  []time.Time
	values []float64
}

// api calls a Prometheus HTTP API endpoint and decodes its data.
func (p *promServer) api(ctx context.Context, path string, params url.Values, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+path, strings.NewReader(params.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: %s", path, body.Error)
	}
	return json.Unmarshal(body.Data, data)
}

func (p *promServer) queryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]series, error) {
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	params := url.Values{
		"query": {expr},
		"start": {strconv.FormatInt(start.Unix(), 10)},
		"end":   {strconv.FormatInt(end.Unix(), 10)},
		"step":  {strconv.Itoa(int(step.Seconds()))},
	}
	if err := p.api(ctx, "/api/v1/query_range", params, &data); err != nil {
		return nil, err
	}
	var out []series
	for _, r := range data.Result {
		s := series{labels: r.Metric}
		for _, v := range r.Values {
			ts, _ := v[0].(float64)
			str, _ := v[1].(string)
			f, err := strconv.ParseFloat(str, 64)
			if err != nil {
				return nil, err
			}
			s.times = append(s.times, time.Unix(0, int64(ts*1e9)))
			s.values = append(s.values, f)
		}
		out = append(out, s)
	}
	return out, nil
}

// report prints what the shipped recording rules and alerts made of the
// run, and the exemplars Prometheus stored, as a check that the picture
// and the rules agree.
func report(ctx context.Context, p *promServer, phases [4]time.Time) error {
	for i, name := range []string{"end of healthy phase", "end of lost phase", "end of restored phase"} {
		var data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		}
		params := url.Values{
			"query": {"job_http_route:fastpath_server_response_zerocopy_large:ratio_rate5m or job_http_route:fastpath_server_response_zerocopy_size_bytes:ratio_rate5m"},
			"time":  {strconv.FormatInt(phases[i+1].Unix(), 10)},
		}
		if err := p.api(ctx, "/api/v1/query", params, &data); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s:\n", name)
		for _, r := range data.Result {
			fmt.Fprintf(os.Stderr, "  %s %s = %v\n", r.Metric["__name__"], r.Metric["http_route"], r.Value[1])
		}
	}
	var alerts struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/api/v1/alerts", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	var body struct {
		Data json.RawMessage `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body.Data, &alerts); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "alerts at the end: %d\n", len(alerts.Alerts))
	for _, a := range alerts.Alerts {
		fmt.Fprintf(os.Stderr, "  %s %s %s\n", a.Labels["alertname"], a.Labels["http_route"], a.State)
	}
	var exemplars []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels map[string]string `json:"labels"`
		} `json:"exemplars"`
	}
	params := url.Values{
		"query": {`http_server_request_duration_seconds_bucket{job="fastpath"}`},
		"start": {strconv.FormatInt(phases[0].Unix(), 10)},
		"end":   {strconv.FormatInt(phases[3].Unix(), 10)},
	}
	if err := p.api(ctx, "/api/v1/query_exemplars", params, &exemplars); err != nil {
		return err
	}
	n, traced := 0, 0
	for _, s := range exemplars {
		for _, e := range s.Exemplars {
			n++
			if len(e.Labels["trace_id"]) == 32 {
				traced++
			}
		}
	}
	fmt.Fprintf(os.Stderr, "exemplars stored for the duration histogram: %d, %d with a trace_id\n", n, traced)
	if traced == 0 {
		return errors.New("prometheus stored no exemplar with a trace_id")
	}
	return nil
}
