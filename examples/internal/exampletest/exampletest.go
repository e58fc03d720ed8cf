// Package exampletest runs an example server the way a user does and checks
// what the README promises: downloads, ranges, 304s, a refused traversal,
// Prometheus metrics that add up to the bytes served (with the zero-copy
// share), exemplars that link them to the requests' traces, the Go runtime's
// and the process's metrics, one JSON log line per request, and metrics on a
// listener of their own.
package exampletest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
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

	"github.com/fastpath-go/fastpath/internal/testutil"
)

// RunFunc is an example's run function.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(net.Addr)) error

// Check runs the example against a temporary directory and checks it.
// route is the http.route the example's file route records; chi is whether
// chi's RequestID middleware runs (so records carry request_id).
func Check(t *testing.T, run RunFunc, route string, chi bool) {
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "127.0.0.1:0", "-root", root}, &stdout, &stderr, func(a net.Addr) { addrc <- a })
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-errc:
		t.Fatalf("example exited: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "curl -r 0-99") || !strings.Contains(stderr.String(), base+"/files/big.bin") {
		t.Errorf("banner lacks the URL and a range curl command:\n%s", stderr.String())
	}

	client := &http.Client{Timeout: 30 * time.Second}
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
	// it; wait for the scrape to catch up.
	var families map[string]*dto.MetricFamily
	for deadline := time.Now().Add(time.Minute); ; {
		_, body = get("/metrics")
		p := expfmt.NewTextParser(model.UTF8Validation)
		var err error
		if families, err = p.TextToMetricFamilies(bytes.NewReader(body)); err != nil {
			t.Fatalf("/metrics is not Prometheus text: %v", err)
		}
		if histogramSum(families, "http_server_response_body_size_bytes") == float64(served) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
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

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("example did not shut down")
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
		"http.response.status_code", "http.response.body.size", "duration", "client.address",
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
	fullDuration := time.Duration(int64(full["duration"].(float64))).Seconds()
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
func CheckMetricsAddr(t *testing.T, run RunFunc) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr testutil.LockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0", "-root", root}, io.Discard, &stderr, func(a net.Addr) { addrc <- a })
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-errc:
		t.Fatalf("example exited: %v\n%s", err, stderr.String())
	}
	banner := stderr.String()
	filesLink := regexp.MustCompile(`(?m)^  files:   (\S+)`).FindStringSubmatch(banner)
	metricsLink := regexp.MustCompile(`(?m)^  metrics: (http://\S+/metrics)$`).FindStringSubmatch(banner)
	if filesLink == nil || metricsLink == nil || filesLink[1] != base+"/files/a.txt" || strings.HasPrefix(metricsLink[1], base) {
		t.Fatalf("banner: want a files link to %s/files/a.txt and metrics elsewhere than %s:\n%s", base, base, banner)
	}

	client := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
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
			// The scrape may come before the handler of the files link has
			// recorded its request; retry until it has, within a minute.
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
				resp, err := client.Get(tt.url)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				ok := resp.StatusCode == tt.status && resp.Header.Get("Location") == tt.location && strings.Contains(string(body), tt.contains)
				if ok {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("GET %s: %d, Location %q, body %q; want %d, Location %q, a body containing %q",
						tt.url, resp.StatusCode, resp.Header.Get("Location"), body, tt.status, tt.location, tt.contains)
				}
			}
		})
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("example did not shut down")
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
func CheckOTLP(t *testing.T, run RunFunc) {
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "127.0.0.1:0", "-root", root}, io.Discard, io.Discard, func(a net.Addr) { addrc <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("example exited: %v", err)
	}
	resp, err := http.Get("http://" + addr.String() + "/files/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel() // shutdown flushes both providers
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["/v1/traces"] == 0 || got["/v1/metrics"] == 0 {
		t.Errorf("collector received %v, want traces and metrics", got)
	}
}
