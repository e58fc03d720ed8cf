// Package exampletest runs an example server the way a user does and checks
// what the README promises: downloads, ranges, 304s, a refused traversal,
// Prometheus metrics that add up to the bytes served (with the zero-copy
// share), exemplars that link them to the requests' traces, the Go runtime's
// and the process's metrics, one JSON log line per request, metrics on a
// listener of their own, a banner whose suggested download shows sendfile at
// work, a shutdown line, and -h.
package exampletest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fastpath-go/fastpath/examples/internal/app"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/ktls"
)

// Want is what an example promises besides what every example does.
type Want struct {
	Package string // the example's import path, to build it for -h
	Route   string // the http.route its file route records
	Chi     bool   // whether chi's RequestID runs, so records carry request_id
}

// Run runs every check on ex, each as a subtest: Check, CheckOTLP,
// CheckMetricsAddr, CheckBanner and CheckHelp.
func Run(t *testing.T, ex app.Example, want Want) {
	t.Run("serve", func(t *testing.T) { Check(t, ex, want.Route, want.Chi) })
	t.Run("OTLP", func(t *testing.T) { CheckOTLP(t, ex) })
	t.Run("metrics-addr", func(t *testing.T) { CheckMetricsAddr(t, ex) })
	t.Run("banner", func(t *testing.T) { CheckBanner(t, ex) })
	t.Run("help", func(t *testing.T) { CheckHelp(t, want.Package, ex.Addr) })
	if ex.Files {
		t.Run("tls", func(t *testing.T) { CheckTLS(t, ex) })
	}
}

// Running is an example running in the test's process.
type Running struct {
	Base   string // http://addr
	cancel context.CancelFunc
	errc   chan error
}

// Start runs ex with args (and -addr 127.0.0.1:0) until it is stopped, and
// returns once it accepts connections.
func Start(t *testing.T, ex app.Example, args []string, stdout, stderr io.Writer) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &Running{cancel: cancel, errc: make(chan error, 1)}
	addrc := make(chan net.Addr, 1)
	go func() {
		e.errc <- app.Run(ctx, ex, append([]string{"-addr", "127.0.0.1:0"}, args...), stdout, stderr, func(a net.Addr) { addrc <- a })
	}()
	select {
	case a := <-addrc:
		e.Base = "http://" + a.String()
	case err := <-e.errc:
		t.Fatalf("example exited: %v\n%s", err, stderr)
	}
	return e
}

// Stop shuts the example down as SIGINT does and waits for it to return.
func (e *Running) Stop(t *testing.T) {
	t.Helper()
	e.cancel()
	select {
	case err := <-e.errc:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("example did not shut down")
	}
}

// OneConn returns a client that keeps one connection to the example. net/http
// serves the requests of a connection one after the other, the next only once
// the handler of the last (the middleware's recording included) has returned:
// so a scrape sent on it sees every earlier request recorded.
func OneConn() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}, Timeout: time.Minute}
}

// Check runs the example against a temporary directory and checks it.
// route is the http.route the example's file route records; chi is whether
// chi's RequestID middleware runs (so records carry request_id).
func Check(t *testing.T, example app.Example, route string, chi bool) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(filepath.Join(root, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("TOP SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr testutil.LockedBuffer
	ex := Start(t, example, []string{"-root", root}, &stdout, &stderr)
	base := ex.Base
	if !strings.Contains(stderr.String(), "  curl -o /dev/null -w '%{http_code} %{size_download}\\n' '"+base+"/files/big.bin'\n") {
		t.Errorf("banner lacks the URL and a curl command to download big.bin:\n%s", stderr.String())
	}

	client := OneConn()
	get := func(path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	type logged struct {
		path, rangeHdr string
		status         int
		body, sendfile int64
	}
	var want []logged

	resp, body := get("/files/big.bin")
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("full download: %d, %d bytes", resp.StatusCode, len(body))
	}
	want = append(want, logged{"/files/big.bin", "", 200, size, size - 512})
	etag := resp.Header.Get("ETag")

	resp, body = get("/files/big.bin", "Range", "bytes=1000-100999")
	if resp.StatusCode != 206 || !bytes.Equal(body, data[1000:101000]) {
		t.Fatalf("range: %d, %d bytes", resp.StatusCode, len(body))
	}
	want = append(want, logged{"/files/big.bin", "bytes=1000-100999", 206, 100000, 100000 - 512})

	resp, body = get("/files/big.bin", "If-None-Match", etag)
	if resp.StatusCode != 304 || len(body) != 0 || etag == "" {
		t.Fatalf("conditional: %d, %d bytes, ETag %q", resp.StatusCode, len(body), etag)
	}
	want = append(want, logged{"/files/big.bin", "", 304, 0, 0})

	for _, p := range []string{"/files/..%2fsecret.txt", "/files/%2e%2e/secret.txt"} {
		resp, body = get(p)
		if resp.StatusCode != 404 || string(body) != "404 page not found\n" {
			t.Fatalf("traversal %s: %d %q", p, resp.StatusCode, body)
		}
		want = append(want, logged{p, "", 404, 19, 0})
	}

	if resp, body = get("/healthz"); resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}

	var served, sent int64
	for _, w := range want {
		served += w.body
		sent += w.sendfile
	}
	// The client can hold a sendfile body before its handler has recorded
	// it; the scrape goes on the same connection, so it is served after.
	_, body = get("/metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	if got := histogramSum(families, "http_server_response_body_size_bytes"); got != float64(served) {
		t.Errorf("response body size sum %v, want the %d bytes served", got, served)
	}
	if got := histogramSum(families, "fastpath_server_response_sendfile_size_bytes"); got != float64(sent) {
		t.Errorf("sendfile size sum %v, want %d", got, sent)
	}
	if got := histogramCount(families, "http_server_request_duration_seconds"); got != uint64(len(want)) {
		t.Errorf("request duration count %d, want %d (health checks and scrapes are skipped)", got, len(want))
	}
	for _, name := range runtimeMetrics {
		if _, ok := families[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// A scraper that asks for OpenMetrics gets it, with exemplars.
	resp, openMetrics := get("/metrics", "Accept", "application/openmetrics-text; version=1.0.0")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") || !bytes.HasSuffix(openMetrics, []byte("# EOF\n")) {
		t.Fatalf("an OpenMetrics scrape got Content-Type %q and a body ending %q", ct, openMetrics[max(0, len(openMetrics)-20):])
	}

	client.CloseIdleConnections()
	ex.Stop(t)
	if !regexp.MustCompile(`(?m)^fastpath: shut down in \S+: 0 in-flight requests drained$`).MatchString(stderr.String()) {
		t.Errorf("no shutdown line saying nothing was in flight:\n%s", stderr.String())
	}

	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line is not JSON: %v: %q", err, sc.Text())
		}
		lines = append(lines, m)
	}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want one per file request (%d):\n%s", len(lines), len(want), stdout.String())
	}
	keys := []string{"time", "level", "msg", "http.request.method", "url.path", "http.route",
		"http.response.status_code", "http.response.body.size", "duration_ms", "client.address",
		"user_agent.original", "network.protocol.version", "trace_id", "span_id", "fastpath.response.sendfile.size"}
	if chi {
		keys = append(keys, "request_id")
	}
	for i, m := range lines {
		w := want[i]
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks %s: %v", i+1, k, m)
			}
		}
		if m["msg"] != "http request" || m["url.path"] != w.path || m["http.route"] != route ||
			m["http.response.status_code"] != float64(w.status) || m["http.response.body.size"] != float64(w.body) ||
			m["fastpath.response.sendfile.size"] != float64(w.sendfile) || m["client.address"] != "127.0.0.1" {
			t.Errorf("line %d = %v, want path %s route %s status %d body %d sendfile %d", i+1, m, w.path, route, w.status, w.body, w.sendfile)
		}
		if got, _ := m["http.request.header.range"].(string); got != w.rangeHdr {
			t.Errorf("line %d range header %q, want %q", i+1, got, w.rangeHdr)
		}
	}
	if strings.Contains(stdout.String(), "TOP SECRET") || strings.Contains(stdout.String(), dir) {
		t.Error("a file outside the root, or a file system path, reached the log")
	}
	if len(lines) == len(want) {
		checkExemplars(t, string(openMetrics), route, lines)
	}
}

// runtimeMetrics are some of the Go runtime's and the process's metrics,
// which a deployment watches beside the requests.
var runtimeMetrics = []string{
	"go_goroutines", "go_gc_duration_seconds", "go_memstats_heap_alloc_bytes", "go_info",
	"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds",
}

// exemplar is one bucket's exemplar in an OpenMetrics exposition.
type exemplar struct {
	metric string            // the bucket's metric name, with _bucket
	labels map[string]string // the bucket's labels, le included
	ex     map[string]string // the exemplar's labels: trace_id, span_id
	value  float64           // the exemplar's value: the measurement
}

// exemplarLine is a sample line with an exemplar:
// name{labels} value # {exemplar labels} exemplar-value [timestamp]
var exemplarLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} \S+ # \{(.*)\} (\S+)(?: \S+)?$`)

// parseExemplars returns the exemplars of an OpenMetrics exposition.
func parseExemplars(t *testing.T, text string) []exemplar {
	t.Helper()
	var out []exemplar
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") || !strings.Contains(line, " # {") {
			continue
		}
		m := exemplarLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("cannot parse the exemplar line %q", line)
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			t.Fatalf("exemplar value in %q: %v", line, err)
		}
		out = append(out, exemplar{metric: m[1], labels: parseLabels(t, m[2]), ex: parseLabels(t, m[3]), value: v})
	}
	return out
}

// parseLabels parses name="value",... with the exposition's escapes.
func parseLabels(t *testing.T, s string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for s != "" {
		name, rest, ok := strings.Cut(s, "=\"")
		if !ok {
			t.Fatalf("bad label set %q", s)
		}
		var val strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				switch rest[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(rest[i])
				}
				continue
			}
			val.WriteByte(rest[i])
		}
		if i == len(rest) {
			t.Fatalf("unterminated label value in %q", s)
		}
		out[name] = val.String()
		s = strings.TrimPrefix(rest[i+1:], ",")
	}
	return out
}

// checkExemplars checks, for the requests that are alone in their series
// (the full download and the range), that the exemplars of their buckets are
// exactly them: the trace and span ids of their log records, and their
// sizes and duration.
func checkExemplars(t *testing.T, text, route string, lines []map[string]any) {
	t.Helper()
	exs := parseExemplars(t, text)
	find := func(metric, status, le string) []exemplar {
		var found []exemplar
		for _, e := range exs {
			if e.metric == metric+"_bucket" && e.labels["http_route"] == route && e.labels["http_response_status_code"] == status && (le == "" || e.labels["le"] == le) {
				found = append(found, e)
			}
		}
		return found
	}
	full, rng := lines[0], lines[1]
	// duration_ms is to the nanosecond, which rounding recovers exactly.
	fullDuration := time.Duration(math.Round(full["duration_ms"].(float64) * 1e6)).Seconds()
	tests := []struct {
		name, metric, status, le string
		rec                      map[string]any
		value                    float64
	}{
		{"full download body size", "http_server_response_body_size_bytes", "200", "1.048576e+06", full, 1 << 20},
		{"full download sendfile size", "fastpath_server_response_sendfile_size_bytes", "200", "1.048576e+06", full, 1<<20 - 512},
		{"full download duration", "http_server_request_duration_seconds", "200", "", full, fullDuration},
		{"range body size", "http_server_response_body_size_bytes", "206", "262144.0", rng, 100000},
		{"range sendfile size", "fastpath_server_response_sendfile_size_bytes", "206", "262144.0", rng, 100000 - 512},
	}
	for _, tt := range tests {
		found := find(tt.metric, tt.status, tt.le)
		if len(found) != 1 {
			t.Errorf("%s: %d exemplars in %s{status %s, le %q}, want 1 (the request's):\n%s", tt.name, len(found), tt.metric, tt.status, tt.le, text)
			continue
		}
		e := found[0]
		if e.ex["trace_id"] != tt.rec["trace_id"] || e.ex["span_id"] != tt.rec["span_id"] || e.value != tt.value || len(e.ex) != 2 {
			t.Errorf("%s: exemplar %v value %v, want trace_id %v span_id %v value %v", tt.name, e.ex, e.value, tt.rec["trace_id"], tt.rec["span_id"], tt.value)
		}
	}
}

// CheckMetricsAddr runs the example with -metrics-addr and without -list
// and checks what its banner promises: metrics on their own listener (and
// not on the public one), a files link that answers, and /files redirected
// to /files/.
func CheckMetricsAddr(t *testing.T, example app.Example) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr testutil.LockedBuffer
	ex := Start(t, example, []string{"-metrics-addr", "127.0.0.1:0", "-root", root}, io.Discard, &stderr)
	base := ex.Base
	banner := stderr.String()
	filesLink := regexp.MustCompile(`(?m)^  files:   (\S+)`).FindStringSubmatch(banner)
	metricsLink := regexp.MustCompile(`(?m)^  metrics: (http://\S+/metrics)$`).FindStringSubmatch(banner)
	if filesLink == nil || metricsLink == nil || filesLink[1] != base+"/files/a.txt" || strings.HasPrefix(metricsLink[1], base) {
		t.Fatalf("banner: want a files link to %s/files/a.txt and metrics elsewhere than %s:\n%s", base, base, banner)
	}

	// The requests to the public listener share a connection, so each is
	// served once the one before it is recorded; the scrapes come after.
	client := OneConn()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	tests := []struct {
		name, url string
		status    int
		location  string // the Location header, for redirects
		contains  string // a string the body must contain
	}{
		{name: "files link", url: filesLink[1], status: 200, contains: "hello"},
		{name: "files without a slash", url: base + "/files", status: http.StatusTemporaryRedirect, location: "/files/"}, // as ServeMux redirects
		{name: "no metrics on the public listener", url: base + "/metrics", status: 404},
		{name: "metrics listener", url: metricsLink[1], status: 200, contains: `http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200"`},
		{name: "runtime metrics", url: metricsLink[1], status: 200, contains: "\ngo_goroutines "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Get(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || resp.Header.Get("Location") != tt.location || !strings.Contains(string(body), tt.contains) {
				t.Fatalf("GET %s: %d, Location %q, body %q; want %d, Location %q, a body containing %q",
					tt.url, resp.StatusCode, resp.Header.Get("Location"), body, tt.status, tt.location, tt.contains)
			}
		})
	}
	client.CloseIdleConnections()
	ex.Stop(t)
}

// CheckBanner runs the example on a directory of a small and two larger
// files, makes the request the banner suggests, and checks that its log
// line shows the sendfile bytes the banner announced: all but net/http's
// first 512 bytes of the smallest file larger than 512 bytes.
func CheckBanner(t *testing.T, example app.Example) {
	root := t.TempDir()
	for name, size := range map[string]int{"a-small.txt": 100, "b-big.bin": 1 << 20, "c-readme.txt": 3000} {
		if err := os.WriteFile(filepath.Join(root, name), bytes.Repeat([]byte("x"), size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr testutil.LockedBuffer
	ex := Start(t, example, []string{"-root", root}, &stdout, &stderr)
	const curl = "  curl -o /dev/null -w '%{http_code} %{size_download}\\n' "
	want := "try a download; its log line shows fastpath.response.sendfile.size 2488, all but the first 512 bytes, which net/http writes itself:\n" +
		curl + "'" + ex.Base + "/files/c-readme.txt'\n"
	if !strings.HasSuffix(stderr.String(), want) {
		t.Fatalf("banner:\n%s\nwant it to end:\n%s", stderr.String(), want)
	}
	// The request the banner suggests: curl's GET of the URL, whole.
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	u := strings.Trim(strings.TrimPrefix(lines[len(lines)-1], curl), "'")
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || n != 3000 {
		t.Fatalf("GET %s: %d, %d bytes, %v; want 200 and the 3000-byte file", u, resp.StatusCode, n, err)
	}
	ex.Stop(t)
	var rec map[string]any
	if err := json.Unmarshal([]byte(stdout.String()), &rec); err != nil {
		t.Fatalf("want one JSON log line: %v\n%s", err, stdout.String())
	}
	if rec["url.path"] != "/files/c-readme.txt" || rec["http.response.body.size"] != 3000.0 || rec["fastpath.response.sendfile.size"] != 2488.0 {
		t.Errorf("log line %v, want c-readme.txt's 3000 bytes, 2488 of them by sendfile", rec)
	}
}

// CheckHelp builds the example pkg, runs it with -h and -help, and checks
// that it prints its usage, with -addr defaulting to addr, and exits 0; and
// that a flag it does not know gets the usage and exit status 2.
func CheckHelp(t *testing.T, pkg, addr string) {
	bin := filepath.Join(t.TempDir(), "example")
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tests := []struct {
		name   string
		args   []string
		status int
	}{
		{name: "-h", args: []string{"-h"}, status: 0},
		{name: "-help", args: []string{"-help"}, status: 0},
		{name: "--help", args: []string{"--help"}, status: 0},
		{name: "unknown flag", args: []string{"-nope"}, status: 2},
		{name: "stray argument", args: []string{"stray"}, status: 2},
		{name: "-tls-cert without -tls-key", args: []string{"-tls-cert", "cert.pem"}, status: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			status := cmd.ProcessState.ExitCode()
			if status != tt.status {
				t.Errorf("exit status %d (%v), want %d\n%s", status, err, tt.status, stderr.String())
			}
			usage := "usage: " + filepath.Base(pkg) + " [flags]\n"
			if !strings.HasPrefix(stderr.String(), usage) && !strings.Contains(stderr.String(), "\n"+usage) {
				t.Errorf("stderr lacks %q:\n%s", usage, stderr.String())
			}
			if !strings.Contains(stderr.String(), fmt.Sprintf("address to listen on (default %q)", addr)) {
				t.Errorf("usage lacks -addr's default %s:\n%s", addr, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing: it is for request logs", stdout.String())
			}
		})
	}
}

func histogramSum(fams map[string]*dto.MetricFamily, name string) float64 {
	var sum float64
	if f, ok := fams[name]; ok {
		for _, m := range f.GetMetric() {
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return sum
}

func histogramCount(fams map[string]*dto.MetricFamily, name string) uint64 {
	var n uint64
	if f, ok := fams[name]; ok {
		for _, m := range f.GetMetric() {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}

// CheckOTLP runs the example with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a
// fake collector on loopback and checks that traces and metrics arrive over
// OTLP/HTTP by the time the example has shut down.
func CheckOTLP(t *testing.T, example app.Example) {
	var mu sync.Mutex
	got := map[string]int{}
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got[r.URL.Path]++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_SERVICE_NAME", "otlp-check")

	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	ex := Start(t, example, []string{"-root", root}, io.Discard, io.Discard)
	resp, err := http.Get(ex.Base + "/files/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ex.Stop(t) // shutdown flushes both providers
	mu.Lock()
	defer mu.Unlock()
	if got["/v1/traces"] == 0 || got["/v1/metrics"] == 0 {
		t.Errorf("collector received %v, want traces and metrics", got)
	}
}

// CheckTLS runs the example with -tls-cert and -tls-key (a self-signed
// certificate) and downloads a file over HTTPS with HTTP/1.1 and with
// HTTP/2. The banner says whether kernel TLS is in force here, and the log
// lines say the same per request: with kernel TLS, the body past its first
// 512 bytes by sendfile and no copy; without it (a kernel with no tls
// module), the reason, and the copy reason client_tls. HTTP/2 stays in
// crypto/tls (alpn) and is copied (client_http2).
func CheckTLS(t *testing.T, example app.Example) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	const size = 100000
	if err := os.WriteFile(filepath.Join(root, "movie.mp4"), bytes.Repeat([]byte("v"), size), 0o644); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, pool := writeCertificate(t, dir)
	var stdout, stderr testutil.LockedBuffer
	ex := Start(t, example, []string{"-root", root, "-tls-cert", certFile, "-tls-key", keyFile}, &stdout, &stderr)
	base := "https://" + strings.TrimPrefix(ex.Base, "http://")

	kernel := ktls.Available()
	for _, want := range []string{"on " + base + " ", "--cacert '" + certFile + "'", "kernel TLS: "} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("banner:\n%s\nlacks %q", stderr.String(), want)
		}
	}
	if on := strings.Contains(stderr.String(), "kernel TLS: on;"); on != (kernel == ktls.InKernel) {
		t.Errorf("banner:\n%s\nsays kernel TLS on: %v; ktls.Available() = %q", stderr.String(), on, kernel)
	}
	for _, http2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: http2}
		if !http2 {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Get(base + "/files/movie.mp4")
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if err != nil || resp.StatusCode != 200 || n != size || (resp.ProtoMajor == 2) != http2 {
			t.Fatalf("GET over %s: %d, %d bytes, %v", resp.Proto, resp.StatusCode, n, err)
		}
	}
	ex.Stop(t)
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, rec)
	}
	if len(recs) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(recs), stdout.String())
	}
	h1 := map[string]any{"fastpath.tls.ktls": kernel == ktls.InKernel, "fastpath.response.sendfile.size": float64(size - 512)}
	if kernel != ktls.InKernel {
		h1["fastpath.tls.ktls_fallback"] = string(kernel)
		h1["fastpath.response.copy_reason"] = "client_tls"
		h1["fastpath.response.sendfile.size"] = 0.0
	}
	h2 := map[string]any{"fastpath.tls.ktls": false, "fastpath.tls.ktls_fallback": "alpn", "fastpath.response.copy_reason": "client_http2"}
	for i, want := range []map[string]any{h1, h2} {
		for k, v := range want {
			if recs[i][k] != v {
				t.Errorf("request %d: %s = %v, want %v\n%v", i, k, recs[i][k], v, recs[i])
			}
		}
	}
}

// writeCertificate writes a self-signed certificate for 127.0.0.1 and its
// key to dir as PEM files, and returns their paths and a pool that trusts
// the certificate.
func writeCertificate(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(leaf)
	return certFile, keyFile, pool
}
