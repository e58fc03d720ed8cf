package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/middleware"
)

// discardLog drops the servers' and ReverseProxy's own log lines.
var discardLog = log.New(io.Discard, "", 0)

// proxyEnv is a proxy under test: ReverseProxy in front of an
// upstream, under Tracing and Logger, served through middleware.Listener on
// loopback.
type proxyEnv struct {
	t        *testing.T
	url      string // the proxy's base URL
	tr       *Transport
	dials    atomic.Int64
	logs     testutil.LockedBuffer
	spans    *tracetest.InMemoryExporter
	done     chan struct{} // one value per request the proxy finished
	client   *http.Client
	upstrURL *url.URL
}

// proxyOpts configure newProxyEnv.
type proxyOpts struct {
	tr    *Transport                      // nil: a fresh one
	rp    func(rp *httputil.ReverseProxy) // adjusts the ReverseProxy
	inner func(http.Handler) http.Handler // between Logger and the proxy
	outer func(http.Handler) http.Handler // outside Tracing

	noListener bool // serve without middleware.Listener
}

func newProxyEnv(t *testing.T, upstream string, o proxyOpts) *proxyEnv {
	t.Helper()
	e := &proxyEnv{t: t, spans: tracetest.NewInMemoryExporter(), done: make(chan struct{}, 1024)}
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	e.upstrURL = u
	e.tr = o.tr
	if e.tr == nil {
		e.tr = &Transport{MaxIdleConnsPerHost: 16}
	}
	if e.tr.DialContext == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		e.tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			e.dials.Add(1)
			return d.DialContext(ctx, network, addr)
		}
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport: e.tr,
		ErrorLog:  discardLog,
	}
	if o.rp != nil {
		o.rp(rp)
	}
	var h http.Handler = ReverseProxy(rp)
	if o.inner != nil {
		h = o.inner(h)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(e.spans))
	h = middleware.Tracing(middleware.WithTracerProvider(tp))(
		middleware.Logger(slog.New(slog.NewJSONHandler(&e.logs, nil)))(h))
	if o.outer != nil {
		h = o.outer(h)
	}
	finished := h
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { e.done <- struct{}{} }()
		finished.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: discardLog}
	if o.noListener {
		go srv.Serve(ln)
	} else {
		go srv.Serve(middleware.Listener(ln))
	}
	e.url = "http://" + ln.Addr().String()
	e.client = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 200}}
	t.Cleanup(func() {
		srv.Close()
		e.client.CloseIdleConnections()
		e.tr.CloseIdleConnections()
	})
	return e
}

// wait waits until the proxy has finished n more requests.
func (e *proxyEnv) wait(n int) {
	e.t.Helper()
	timeout := time.After(time.Minute)
	for range n {
		select {
		case <-e.done:
		case <-timeout:
			e.t.Fatal("the proxy did not finish its requests in a minute")
		}
	}
}

// records returns the request log records so far.
func (e *proxyEnv) records() []map[string]any {
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			e.t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

// last returns the last log record and span.
func (e *proxyEnv) last() (map[string]any, tracetest.SpanStub) {
	e.t.Helper()
	recs := e.records()
	spans := e.spans.GetSpans()
	if len(recs) == 0 || len(spans) == 0 {
		e.t.Fatalf("%d log records and %d spans, want some", len(recs), len(spans))
	}
	return recs[len(recs)-1], spans[len(spans)-1]
}

// spanAttr returns a span attribute as a string, "" when absent.
func spanAttr(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// copyReason returns the span's CopyReasonKey, "" when absent.
func copyReason(s tracetest.SpanStub) middleware.CopyReason {
	return middleware.CopyReason(spanAttr(s, CopyReasonKey))
}

// gzipString returns s compressed with gzip.
func gzipString(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.String()
}

// num returns a numeric log field, -1 when absent.
func num(rec map[string]any, key string) int64 {
	v, ok := rec[key].(float64)
	if !ok {
		return -1
	}
	return int64(v)
}

// rawUpstream is an upstream that speaks HTTP by hand: serve runs for each
// connection it accepts (numbered from 0) with a reader over it.
func rawUpstream(t *testing.T, serve func(i int, c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(i, c, bufio.NewReader(c))
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// okStep is what okUpstream's special function did with a request.
type okStep int

const (
	okDefault  okStep = iota // nothing: the request gets the usual answer
	okAnswered               // it answered the request itself
	okHangUp                 // the connection ends, answering nothing more
)

// okUpstream is a rawUpstream that reads the requests on each connection
// one after another and answers each with the 4-byte body "ok I", I the
// number of the connection from 0, but first asks special, with n the
// number of the request on its connection from 0, whether to.
func okUpstream(t *testing.T, special func(i, n int, c net.Conn) okStep) string {
	t.Helper()
	return rawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
		for n := 0; ; n++ {
			if _, err := readRequest(br); err != nil {
				return
			}
			switch special(i, n, c) {
			case okHangUp:
				return
			case okDefault:
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok %d", i)
			}
		}
	})
}

// readRequest reads one request and its body from br.
func readRequest(br *bufio.Reader) (*http.Request, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return req, err
}

// checkNoGoroutines fails when a goroutine other than the caller's runs
// this package's code (its own, not its tests'), or was started by it: once
// the caller has waited for every request and closed every connection,
// nothing the proxy began may still be going. It looks once, at the moment
// the caller's synchronisation fixes, rather than polling a goroutine count
// that other packages' goroutines (net/http's, the client's) bring down in
// their own time.
func checkNoGoroutines(t *testing.T) {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	dir := path.Dir(self) + "/"
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var left []string
	for _, g := range strings.Split(string(buf), "\n\n")[1:] { // the first is the caller's
		if runsPackageCode(g, dir) {
			left = append(left, g)
		}
	}
	if len(left) > 0 {
		t.Errorf("%d goroutines of the proxy still run; the first:\n%s", len(left), left[0])
	}
}

// runsPackageCode reports whether a goroutine's stack, as runtime.Stack
// prints it, has a frame (or its "created by" line) in a file of dir that
// is not a test file.
func runsPackageCode(stack, dir string) bool {
	for line := range strings.SplitSeq(stack, "\n") {
		file, ok := strings.CutPrefix(strings.TrimSpace(line), dir)
		if !ok {
			continue
		}
		file, _, _ = strings.Cut(file, ":")
		if !strings.Contains(file, "/") && !strings.HasSuffix(file, "_test.go") {
			return true
		}
	}
	return false
}

// checkOpen fails unless tr holds exactly n open connections (idle or in
// use). It need not wait: every connection these tests expect closed is
// closed before the round trip that failed returns, or before the body's
// last Read or the handler returns, and the caller has waited for those.
func checkOpen(t *testing.T, tr *Transport, n int64) {
	t.Helper()
	if got := tr.open.Load(); got != n {
		t.Errorf("%d upstream connections open, want %d", got, n)
	}
}
