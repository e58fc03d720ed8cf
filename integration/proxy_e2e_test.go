package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
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
	"strconv"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/strace"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/middleware"
	"github.com/fastpath-go/fastpath/proxy"
)

// proxyChildEnv carries a proxyChildConfig (as JSON) to a re-executed test
// binary, which then runs a proxy in front of a file server instead of the
// tests. It is checked in init, before TestMain's own child dispatch.
const proxyChildEnv = "FASTPATH_PROXY_CHILD"

func init() {
	if cfg := os.Getenv(proxyChildEnv); cfg != "" {
		os.Exit(runProxyChild(cfg))
	}
}

// proxyChildConfig describes the servers a proxy child runs.
type proxyChildConfig struct {
	Dir   string // the files the upstream serves
	Out   string // where the child writes its proxyReport at exit
	TLS   bool   // the proxy serves TLS
	HTTP2 bool   // and HTTP/2
	Hide  bool   // a wrapper that hides io.ReaderFrom sits in front of the proxy
}

// proxyReport is what a proxy child saw of its two servers.
type proxyReport struct {
	Proxy, Upstream serverReport
}

type serverReport struct {
	Logs    []map[string]any
	Spans   []map[string]any // attributes
	Metrics map[string]int64 // histogram sums by name
}

// observed is one server's observability stack, with what it recorded kept
// in memory.
type observed struct {
	logs   testutil.LockedBuffer
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
}

func (o *observed) wrap(h http.Handler) http.Handler {
	o.spans = tracetest.NewInMemoryExporter()
	o.reader = sdkmetric.NewManualReader()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(o.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(o.reader))
	return middleware.Tracing(middleware.WithTracerProvider(tp))(
		middleware.Metrics(middleware.WithMeterProvider(mp))(
			middleware.Logger(slog.New(slog.NewJSONHandler(&o.logs, nil)))(h)))
}

func (o *observed) report() (serverReport, error) {
	r := serverReport{Metrics: map[string]int64{}}
	for _, line := range strings.Split(strings.TrimSpace(o.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return r, err
		}
		r.Logs = append(r.Logs, m)
	}
	for _, s := range o.spans.GetSpans() {
		m := map[string]any{}
		for _, kv := range s.Attributes {
			m[string(kv.Key)] = kv.Value.AsInterface()
		}
		r.Spans = append(r.Spans, m)
	}
	var rm metricdata.ResourceMetrics
	if err := o.reader.Collect(context.Background(), &rm); err != nil {
		return r, err
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[int64]); ok {
				for _, dp := range h.DataPoints {
					r.Metrics[m.Name] += dp.Sum
				}
			}
		}
	}
	return r, nil
}

// runProxyChild serves a handlers.FileServer upstream and a
// proxy.ReverseProxy in front of it, both with Logger, Metrics, Tracing
// and Listener, until standard input closes; it prints the proxy's address
// first and writes its report last.
func runProxyChild(raw string) int {
	var cfg proxyChildConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "proxy child config:", err)
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "proxy child:", err); return 2 }
	root, err := os.OpenRoot(cfg.Dir)
	if err != nil {
		return fail(err)
	}
	var up, px observed
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	usrv := &http.Server{Handler: up.wrap(handlers.FileServer(root)), ReadHeaderTimeout: 10 * time.Second}
	go usrv.Serve(middleware.Listener(uln))

	target := &url.URL{Scheme: "http", Host: uln.Addr().String()}
	tr := &proxy.Transport{}
	var ph http.Handler = proxy.ReverseProxy(&httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: tr,
	})
	if cfg.Hide {
		next := ph
		ph = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { next.ServeHTTP(hider{w}, r) })
	}
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	psrv := &http.Server{Handler: px.wrap(ph), ReadHeaderTimeout: 10 * time.Second}
	zln := middleware.Listener(pln)
	if cfg.TLS {
		cert, err := selfSigned()
		if err != nil {
			return fail(err)
		}
		psrv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		psrv.Protocols = new(http.Protocols)
		psrv.Protocols.SetHTTP1(true)
		psrv.Protocols.SetHTTP2(cfg.HTTP2)
		go psrv.ServeTLS(zln, "", "")
	} else {
		go psrv.Serve(zln)
	}
	fmt.Printf("ADDR %s\n", pln.Addr())
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := psrv.Shutdown(ctx); err != nil {
		return fail(err)
	}
	tr.CloseIdleConnections()
	if err := usrv.Shutdown(ctx); err != nil {
		return fail(err)
	}
	var rep proxyReport
	if rep.Proxy, err = px.report(); err != nil {
		return fail(err)
	}
	if rep.Upstream, err = up.report(); err != nil {
		return fail(err)
	}
	out, _ := json.Marshal(rep)
	if err := os.WriteFile(cfg.Out, out, 0o644); err != nil {
		return fail(err)
	}
	return 0
}

// splices sums the splice(2) calls of a trace written with strace -y, apart
// by direction: into a pipe (from the upstream socket) and out of one (to the
// client socket). Counting the bytes that reached the client is what
// zerocopy.Conn does, so toSocket is the figure to compare.
func splices(path string) (toPipe, toSocket strace.Calls, err error) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	pending := map[string]string{} // pid -> the arguments of an unfinished call
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		pid, rest, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		switch {
		case strings.HasPrefix(rest, "splice(") && strings.HasSuffix(rest, "<unfinished ...>"):
			pending[pid] = rest
			continue
		case strings.HasPrefix(rest, "<... splice resumed>"):
			rest = pending[pid] + strings.TrimPrefix(rest, "<... splice resumed>")
			delete(pending, pid)
		case !strings.HasPrefix(rest, "splice("):
			continue
		}
		i := strings.LastIndex(rest, "= ")
		if i < 0 {
			continue
		}
		ret, _, _ := strings.Cut(rest[i+2:], " ")
		n, perr := strconv.ParseInt(ret, 10, 64)
		// The third argument is the descriptor written: "9<pipe:[123]>".
		args := strings.SplitN(strings.TrimPrefix(rest, "splice("), ", ", 4)
		c := &toSocket
		if len(args) >= 3 && strings.Contains(args[2], "<pipe:") {
			c = &toPipe
		}
		c.Count++
		switch {
		case perr != nil:
		case n < 0:
			c.Errors++
		default:
			c.Sum += n
		}
	}
	return toPipe, toSocket, sc.Err()
}

// TestProxyEndToEndStrace runs proxy.ReverseProxy in front of a
// handlers.FileServer upstream, both under Logger, Metrics, Tracing and
// Listener, in a child process under strace -f, and checks for each download
// that the body sizes the client received, the proxy recorded and the
// upstream recorded agree; that the proxy spliced every body byte (strace's
// splice(2) calls into the client socket sum to exactly what it recorded, in
// its log, metric and span); and that the upstream's recorded sendfile bytes
// are the sendfile(2) bytes strace saw.
func TestProxyEndToEndStrace(t *testing.T) {
	if err := strace.Check(); err != nil {
		t.Skip("skipping: ", err)
	}
	const size = 4<<20 + 7
	dir := t.TempDir()
	data := testutil.WriteRandomFile(t, dir, "blob.bin", size)
	tests := []struct {
		name         string
		method       string
		rng          string
		tls, http2   bool
		hide         bool
		wantStatus   int
		wantBody     []byte // nil: check the length only
		wantLen      int64
		wantSplice   int64
		wantSendfile int64 // at the upstream
		wantPath     string
		wantReason   middleware.CopyReason
	}{
		{name: "full download", wantStatus: 200, wantBody: data,
			wantSplice: size, wantSendfile: size - sniffLen, wantPath: "splice"},
		{name: "single range", rng: "bytes=1000-2000999", wantStatus: 206, wantBody: data[1000:2001000],
			wantSplice: 2000000, wantSendfile: 2000000 - sniffLen, wantPath: "splice"},
		{name: "suffix range", rng: "bytes=-1048576", wantStatus: 206, wantBody: data[size-1048576:],
			wantSplice: 1048576, wantSendfile: 1048576 - sniffLen, wantPath: "splice"},
		// FileServer gives multi-range responses a Content-Length, so the
		// whole multipart body is spliced too.
		{name: "multi-range", rng: "bytes=0-999,2000000-2999999", wantStatus: 206, wantLen: -1,
			wantSplice: -1, wantSendfile: 1000 + 1000000 - sniffLen, wantPath: "splice"},
		{name: "HEAD", method: "HEAD", wantStatus: 200, wantLen: 0},
		{name: "a wrapper hides ReadFrom", hide: true, wantStatus: 200, wantBody: data,
			wantSplice: 0, wantSendfile: size - sniffLen, wantPath: "copy", wantReason: middleware.CopyReasonNoReadFrom},
		{name: "TLS client", tls: true, wantStatus: 200, wantBody: data,
			wantSplice: 0, wantSendfile: size - sniffLen, wantPath: "copy", wantReason: middleware.CopyReasonClientTLS},
		{name: "HTTP/2 client", tls: true, http2: true, wantStatus: 200, wantBody: data,
			wantSplice: 0, wantSendfile: size - sniffLen, wantPath: "copy", wantReason: middleware.CopyReasonClientHTTP2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "report.json")
			addr, trace, stop := startProxyChild(t, proxyChildConfig{Dir: dir, Out: out, TLS: tt.tls, HTTP2: tt.http2, Hide: tt.hide})
			method := tt.method
			if method == "" {
				method = "GET"
			}
			scheme := "http"
			tr := &http.Transport{DisableKeepAlives: true, DisableCompression: true}
			if tt.tls {
				scheme = "https"
				tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
				tr.ForceAttemptHTTP2 = tt.http2
			}
			req, _ := http.NewRequest(method, scheme+"://"+addr+"/blob.bin", nil)
			if tt.rng != "" {
				req.Header.Set("Range", tt.rng)
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			tr.CloseIdleConnections()
			stop()
			var rep proxyReport
			raw, err := os.ReadFile(out)
			if err == nil {
				err = json.Unmarshal(raw, &rep)
			}
			if err != nil {
				t.Fatal(err)
			}

			checkResponse(t, resp, body, tt.wantStatus, tt.http2, tt.wantBody, tt.wantLen)
			if tt.rng != "" && strings.Contains(tt.rng, ",") {
				checkMultipart(t, resp, body, data, [][2]int{{0, 1000}, {2000000, 3000000}})
			}
			wantSplice := tt.wantSplice
			if wantSplice < 0 {
				wantSplice = int64(len(body))
			}
			n := int64(len(body))
			if len(rep.Proxy.Logs) != 1 || len(rep.Upstream.Logs) != 1 || len(rep.Proxy.Spans) != 1 {
				t.Fatalf("%d proxy records, %d upstream records, %d proxy spans; want 1 each", len(rep.Proxy.Logs), len(rep.Upstream.Logs), len(rep.Proxy.Spans))
			}
			plog, ulog, pspan := rep.Proxy.Logs[0], rep.Upstream.Logs[0], rep.Proxy.Spans[0]
			exact := func(what string, got any, want int64) {
				t.Helper()
				var g int64 = -1
				switch v := got.(type) {
				case float64:
					g = int64(v)
				case int64:
					g = v
				}
				if g != want {
					t.Errorf("%s = %v, want %d", what, got, want)
				}
			}
			exact("proxy log body size", plog["http.response.body.size"], n)
			exact("proxy log splice size", plog[middleware.SpliceSizeKey], wantSplice)
			exact("proxy log sendfile size", plog[middleware.SendfileSizeKey], 0)
			exact("proxy span body size", pspan["http.response.body.size"], n)
			exact("proxy span splice size", pspan[middleware.SpliceSizeKey], wantSplice)
			exact("proxy metric body size", rep.Proxy.Metrics["http.server.response.body.size"], n)
			exact("proxy metric splice size", rep.Proxy.Metrics[middleware.SpliceSizeMetric], wantSplice)
			exact("proxy metric sendfile size", rep.Proxy.Metrics[middleware.SendfileSizeMetric], 0)
			exact("upstream log body size", ulog["http.response.body.size"], n)
			exact("upstream log sendfile size", ulog[middleware.SendfileSizeKey], tt.wantSendfile)
			exact("upstream metric sendfile size", rep.Upstream.Metrics[middleware.SendfileSizeMetric], tt.wantSendfile)
			exact("upstream log splice size", ulog[middleware.SpliceSizeKey], 0)
			if _, ok := plog["error.type"]; ok {
				t.Errorf("proxy error.type %v, want none", plog["error.type"])
			}
			if got, _ := pspan[proxy.BodyKey].(string); got != tt.wantPath {
				t.Errorf("%s = %q, want %q", proxy.BodyKey, got, tt.wantPath)
			}
			// Why the proxy copied is in each of its records, and the
			// copied bytes (all but what net/http writes itself) in the
			// metric that the FastpathZeroCopyLost alert breaks down.
			if got, _ := plog[middleware.CopyReasonKey].(string); middleware.CopyReason(got) != tt.wantReason {
				t.Errorf("proxy log %s = %q, want %q", middleware.CopyReasonKey, got, tt.wantReason)
			}
			if got, _ := pspan[middleware.CopyReasonKey].(string); middleware.CopyReason(got) != tt.wantReason {
				t.Errorf("proxy span %s = %q, want %q", middleware.CopyReasonKey, got, tt.wantReason)
			}
			var wantCopied int64
			if tt.wantReason != "" {
				wantCopied = n - wantSplice - sniffLen
			}
			exact("proxy metric copied size", rep.Proxy.Metrics[middleware.CopiedSizeMetric], wantCopied)

			sum, err := strace.ParseFile(trace)
			if err != nil {
				t.Fatal(err)
			}
			toPipe, toSocket, err := splices(trace)
			if err != nil {
				t.Fatal(err)
			}
			if toSocket.Sum != wantSplice || toPipe.Sum != wantSplice {
				t.Errorf("strace saw splice(2) move %d bytes into pipes and %d out to sockets (%d and %d calls); the proxy recorded %d",
					toPipe.Sum, toSocket.Sum, toPipe.Count, toSocket.Count, wantSplice)
			}
			if sf := sum["sendfile"]; sf.Sum != tt.wantSendfile {
				t.Errorf("strace saw sendfile(2) send %d bytes in %d calls; the upstream recorded %d", sf.Sum, sf.Count, tt.wantSendfile)
			}
		})
	}
}

// startProxyChild runs the test binary as a proxy child under strace -y (so
// splice calls name their descriptors) and returns the proxy's address, the
// trace file, and a function that stops the child and waits for it.
func startProxyChild(t *testing.T, cfg proxyChildConfig) (addr, trace string, stop func()) {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	trace = filepath.Join(t.TempDir(), "strace.out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "strace", "-f", "-qq", "-y", "-e", "signal=none", "-e", "trace=sendfile,splice",
		"-o", trace, "--", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), proxyChildEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	stop = func() {
		if waited {
			return
		}
		waited = true
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("proxy child: %v", err)
		}
	}
	t.Cleanup(func() {
		if !waited {
			waited = true
			stdin.Close()
			cmd.Wait()
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("proxy child did not start: %v", err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "ADDR ")), trace, stop
}
