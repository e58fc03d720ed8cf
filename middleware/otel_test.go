package middleware

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// telemetry is an SDK pipeline that keeps what it is given in memory.
type telemetry struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tel := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewInMemoryExporter()}
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(tel.spans))
	t.Cleanup(func() {
		tel.mp.Shutdown(context.Background())
		tel.tp.Shutdown(context.Background())
	})
	return tel
}

// stack returns Tracing, Metrics and Logger over h, in that order.
func (tel *telemetry) stack(h http.Handler) http.Handler {
	_, l := newCapture()
	return Tracing(WithTracerProvider(tel.tp), WithPropagators(propagation.TraceContext{}))(
		Metrics(WithMeterProvider(tel.mp))(Logger(l)(h)))
}

func (tel *telemetry) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != scopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, scopeName)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// attrString renders an attribute set as sorted key=value pairs.
func attrString(kvs []attribute.KeyValue) string {
	s := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		s = append(s, string(kv.Key)+"="+kv.Value.Emit())
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// point is one histogram data point: its count and sum, by attribute set.
type point struct {
	count uint64
	sum   float64
}

func histogramPoints(t *testing.T, m metricdata.Metrics) map[string]point {
	t.Helper()
	out := map[string]point{}
	switch d := m.Data.(type) {
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			out[attrString(dp.Attributes.ToSlice())] = point{dp.Count, dp.Sum}
		}
	case metricdata.Histogram[int64]:
		for _, dp := range d.DataPoints {
			out[attrString(dp.Attributes.ToSlice())] = point{dp.Count, float64(dp.Sum)}
		}
	default:
		t.Fatalf("%s is %T, want a histogram", m.Name, m.Data)
	}
	return out
}

// TestMetricInstruments checks names, units, types and the advised buckets.
func TestMetricInstruments(t *testing.T) {
	tel := newTelemetry(t)
	h := tel.stack(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv := startServer(t, h, true)
	do(t, srv.Client(), mustRequest(t, "GET", srv.URL))
	srv.Close()
	ms := tel.collect(t)
	tests := []struct {
		name, unit, kind string
	}{
		{"http.server.request.duration", "s", "histogram[float64]"},
		{"http.server.active_requests", "{request}", "updowncounter[int64]"},
		{"http.server.request.body.size", "By", "histogram[int64]"},
		{"http.server.response.body.size", "By", "histogram[int64]"},
		{"fastpath.server.response.sendfile.size", "By", "histogram[int64]"},
		{"fastpath.server.response.splice.size", "By", "histogram[int64]"},
	}
	if len(ms) != len(tests) {
		t.Errorf("got %d metrics, want %d", len(ms), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := ms[tt.name]
			if !ok {
				t.Fatalf("metric %s not recorded", tt.name)
			}
			if m.Unit != tt.unit {
				t.Errorf("unit %q, want %q", m.Unit, tt.unit)
			}
			if m.Description == "" {
				t.Error("no description")
			}
			var kind string
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				kind = "histogram[float64]"
				want := []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
				if got := d.DataPoints[0].Bounds; !slices.Equal(got, want) {
					t.Errorf("bounds %v, want the advised %v", got, want)
				}
			case metricdata.Histogram[int64]:
				kind = "histogram[int64]"
				want := []float64{0, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28, 1 << 30, 1 << 32}
				if got := d.DataPoints[0].Bounds; !slices.Equal(got, want) {
					t.Errorf("bounds %v, want %v", got, want)
				}
			case metricdata.Sum[int64]:
				if !d.IsMonotonic {
					kind = "updowncounter[int64]"
				}
			}
			if kind != tt.kind {
				t.Errorf("data %T, want %s", m.Data, tt.kind)
			}
		})
	}
}

// TestTelemetry checks exact metric points and span contents per request.
func TestTelemetry(t *testing.T) {
	path, _ := writeTestFile(t, "blob.bin", 1<<20)
	hello := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }
	chiApp := func() http.Handler {
		r := chi.NewRouter()
		r.Get("/users/{id}", hello)
		r.Get("/files/{name}", serveFile(t, path))
		r.Get("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
		r.Get("/panic", func(w http.ResponseWriter, r *http.Request) { panic("kaboom") })
		return r
	}
	muxApp := func() http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /items/{id}", hello)
		return mux
	}
	type want struct {
		status     int // 0: no status attribute
		route      string
		method     string // http.request.method
		errType    string
		body       int64
		sendfile   int64
		duration   float64 // seconds, with the fake clock
		spanName   string
		spanStatus codes.Code
		exception  bool
	}
	tests := []struct {
		name   string
		app    func() http.Handler
		method string
		path   string
		header http.Header
		want   want
	}{
		{
			name: "plain response", app: chiApp, method: "GET", path: "/users/42",
			want: want{status: 200, route: "/users/{id}", method: "GET", body: 5, duration: 0.002, spanName: "GET /users/{id}"},
		},
		{
			name: "file full", app: chiApp, method: "GET", path: "/files/blob.bin",
			want: want{status: 200, route: "/files/{name}", method: "GET", body: 1 << 20, sendfile: 1<<20 - 512, duration: 0.002, spanName: "GET /files/{name}"},
		},
		{
			name: "file range", app: chiApp, method: "GET", path: "/files/blob.bin", header: http.Header{"Range": {"bytes=1000-4999"}},
			want: want{status: 206, route: "/files/{name}", method: "GET", body: 4000, sendfile: 4000 - 512, duration: 0.002, spanName: "GET /files/{name}"},
		},
		{
			name: "not found", app: chiApp, method: "GET", path: "/nope",
			want: want{status: 404, method: "GET", body: 19, duration: 0.002, spanName: "GET"},
		},
		{
			name: "server error", app: chiApp, method: "GET", path: "/fail",
			want: want{status: 500, route: "/fail", method: "GET", errType: "500", body: 5, duration: 0.002, spanName: "GET /fail", spanStatus: codes.Error},
		},
		{
			name: "panic", app: chiApp, method: "GET", path: "/panic",
			want: want{status: 500, route: "/panic", method: "GET", errType: "panic", duration: 0.001, spanName: "GET /panic", spanStatus: codes.Error, exception: true},
		},
		{
			name: "unknown method", app: chiApp, method: "FOO", path: "/users/42",
			want: want{status: 405, method: "_OTHER", duration: 0.002, spanName: "HTTP"},
		},
		{
			name: "ServeMux route", app: muxApp, method: "GET", path: "/items/7",
			want: want{status: 200, route: "/items/{id}", method: "GET", body: 5, duration: 0.002, spanName: "GET /items/{id}"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fakeClock(t)
			tel := newTelemetry(t)
			srv := startServer(t, recoverer(tel.stack(tt.app())), true)
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			req := mustRequest(t, tt.method, srv.URL+tt.path)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, body := do(t, srv.Client(), req)
			srv.Close()
			w := tt.want
			if resp.StatusCode != w.status {
				t.Fatalf("client got %d, want %d", resp.StatusCode, w.status)
			}
			if int64(len(body)) != w.body && w.status != 500 {
				t.Fatalf("client got %d bytes, want %d", len(body), w.body)
			}

			attrs := []attribute.KeyValue{
				attribute.String("http.request.method", w.method),
				attribute.String("url.scheme", "http"),
				attribute.String("network.protocol.version", "1.1"),
			}
			if w.status != 0 {
				attrs = append(attrs, attribute.Int("http.response.status_code", w.status))
			}
			if w.route != "" {
				attrs = append(attrs, attribute.String("http.route", w.route))
			}
			if w.errType != "" {
				attrs = append(attrs, attribute.String("error.type", w.errType))
			}
			set := attrString(attrs)
			ms := tel.collect(t)
			for name, want := range map[string]point{
				"http.server.request.duration":           {1, w.duration},
				"http.server.request.body.size":          {1, 0},
				"http.server.response.body.size":         {1, float64(w.body)},
				"fastpath.server.response.sendfile.size": {1, float64(w.sendfile)},
				"fastpath.server.response.splice.size":   {1, 0},
			} {
				got := histogramPoints(t, ms[name])
				if len(got) != 1 || got[set] != want {
					t.Errorf("%s = %v, want {%q: %v}", name, got, set, want)
				}
			}
			active := ms["http.server.active_requests"].Data.(metricdata.Sum[int64])
			wantActive := attrString([]attribute.KeyValue{
				attribute.String("http.request.method", w.method), attribute.String("url.scheme", "http")})
			if len(active.DataPoints) != 1 || attrString(active.DataPoints[0].Attributes.ToSlice()) != wantActive || active.DataPoints[0].Value != 0 {
				t.Errorf("active requests = %+v, want 0 for {%s}", active.DataPoints, wantActive)
			}

			spans := tel.spans.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("got %d spans, want 1", len(spans))
			}
			sp := spans[0]
			if sp.Name != w.spanName {
				t.Errorf("span name %q, want %q", sp.Name, w.spanName)
			}
			if sp.SpanKind != trace.SpanKindServer {
				t.Errorf("span kind %v, want server", sp.SpanKind)
			}
			if got := sp.EndTime.Sub(sp.StartTime).Seconds(); got != w.duration {
				t.Errorf("span lasted %vs, want %vs: the same as the duration metric", got, w.duration)
			}
			if sp.Status.Code != w.spanStatus {
				t.Errorf("span status %v, want %v", sp.Status.Code, w.spanStatus)
			}
			u, _ := url.Parse(srv.URL)
			host, port, _ := net.SplitHostPort(u.Host)
			spanAttrs := append(attrs,
				attribute.String("url.path", tt.path),
				attribute.String("server.address", host),
				attribute.Int("server.port", atoi(port)),
				attribute.String("client.address", "127.0.0.1"),
				attribute.String("network.peer.address", "127.0.0.1"),
				attribute.String("user_agent.original", "Go-http-client/1.1"),
				attribute.Int("http.request.body.size", 0),
				attribute.Int("http.response.body.size", int(w.body)),
				attribute.Int64(SendfileSizeKey, w.sendfile),
				attribute.Int64(SpliceSizeKey, 0),
			)
			if w.method != tt.method {
				spanAttrs = append(spanAttrs, attribute.String("http.request.method_original", tt.method))
			}
			var gotAttrs []attribute.KeyValue
			for _, kv := range sp.Attributes {
				if kv.Key == "network.peer.port" {
					if kv.Value.AsInt64() <= 0 {
						t.Errorf("network.peer.port = %v", kv.Value.AsInt64())
					}
					continue
				}
				gotAttrs = append(gotAttrs, kv)
			}
			if got, want := attrString(gotAttrs), attrString(spanAttrs); got != want {
				t.Errorf("span attributes\n got %s\nwant %s", got, want)
			}
			var events []string
			for _, ev := range sp.Events {
				events = append(events, ev.Name)
				if ev.Name == "exception" {
					m := map[attribute.Key]string{}
					for _, kv := range ev.Attributes {
						m[kv.Key] = kv.Value.Emit()
					}
					if m["exception.type"] != "string" || m["exception.message"] != "kaboom" || !strings.Contains(m["exception.stacktrace"], "otel_test.go") {
						t.Errorf("exception event %v, want the panic's type, message and stack", m)
					}
				}
			}
			if wantEvents := w.exception; wantEvents != slices.Equal(events, []string{"exception"}) {
				t.Errorf("span events %v, want exception=%v", events, wantEvents)
			}
		})
	}
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// recoverer answers 500 for a panic that reached it, as chi's Recoverer does.
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				w.WriteHeader(http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// TestTelemetryAbortedDownload checks the attribute sets and values of a
// download the client abandoned.
func TestTelemetryAbortedDownload(t *testing.T) {
	path, _ := writeTestFile(t, "big.bin", 64<<20)
	tel := newTelemetry(t)
	r := chi.NewRouter()
	r.Get("/files/{name}", serveFile(t, path))
	srv := startServer(t, tel.stack(r), true)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	const read = 1 << 20
	if _, err := io.CopyN(io.Discard, resp.Body, read); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	srv.Close()

	set := attrString([]attribute.KeyValue{
		attribute.String("http.request.method", "GET"),
		attribute.String("url.scheme", "http"),
		attribute.String("network.protocol.version", "1.1"),
		attribute.Int("http.response.status_code", 200),
		attribute.String("http.route", "/files/{name}"),
		attribute.String("error.type", string(ErrorTypeClientAborted)),
	})
	ms := tel.collect(t)
	body := histogramPoints(t, ms["http.server.response.body.size"])
	sendfile := histogramPoints(t, ms["fastpath.server.response.sendfile.size"])
	if len(body) != 1 || body[set].count != 1 || body[set].sum < read || body[set].sum >= 64<<20 {
		t.Errorf("response body size = %v, want one point for {%s} with the bytes that got out", body, set)
	}
	if len(sendfile) != 1 || sendfile[set].sum != body[set].sum-512 {
		t.Errorf("sendfile size = %v, want body size - 512 = %v", sendfile, body[set].sum-512)
	}
	sp := tel.spans.GetSpans()[0]
	if sp.Status.Code != codes.Unset {
		t.Errorf("span status %v, want unset: a client going away is not a server error", sp.Status.Code)
	}
	var errType string
	for _, kv := range sp.Attributes {
		if kv.Key == "error.type" {
			errType = kv.Value.AsString()
		}
	}
	if errType != string(ErrorTypeClientAborted) {
		t.Errorf("span error.type %q, want %s", errType, ErrorTypeClientAborted)
	}
}

// TestTelemetryRandomPaths checks that random raw paths and methods add no
// attribute values: cardinality stays bounded whatever clients send.
func TestTelemetryRandomPaths(t *testing.T) {
	tel := newTelemetry(t)
	r := chi.NewRouter()
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {})
	srv := startServer(t, tel.stack(r), false)
	rng := rand.New(rand.NewPCG(7, 7))
	const n = 200
	for i := range n {
		method := "GET"
		if i%2 == 1 {
			method = fmt.Sprintf("X%06d", rng.IntN(1e6))
		}
		do(t, srv.Client(), mustRequest(t, method, fmt.Sprintf("%s/%x/%x", srv.URL, rng.Uint64(), rng.Uint64())))
	}
	srv.Close()
	ms := tel.collect(t)
	got := histogramPoints(t, ms["http.server.request.duration"])
	want := map[string]uint64{
		attrString([]attribute.KeyValue{
			attribute.String("http.request.method", "GET"), attribute.String("url.scheme", "http"),
			attribute.String("network.protocol.version", "1.1"), attribute.Int("http.response.status_code", 404),
		}): n / 2,
		attrString([]attribute.KeyValue{
			attribute.String("http.request.method", "_OTHER"), attribute.String("url.scheme", "http"),
			attribute.String("network.protocol.version", "1.1"), attribute.Int("http.response.status_code", 405),
		}): n / 2,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d attribute sets, want %d: %v", len(got), len(want), got)
	}
	for set, count := range want {
		if got[set].count != count {
			t.Errorf("{%s} count %d, want %d", set, got[set].count, count)
		}
	}
	spanNames := map[string]int{}
	for _, sp := range tel.spans.GetSpans() {
		spanNames[sp.Name]++
	}
	if len(spanNames) != 2 || spanNames["GET"] != n/2 || spanNames["HTTP"] != n/2 {
		t.Errorf("span names %v, want GET and HTTP only", spanNames)
	}
}

// TestTracingPropagation checks that the server span continues the trace in
// the traceparent header and that Logger outside Tracing still logs its ids.
func TestTracingPropagation(t *testing.T) {
	tel := newTelemetry(t)
	logs, l := newCapture()
	h := Logger(l)(Tracing(WithTracerProvider(tel.tp), WithPropagators(propagation.TraceContext{}))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	srv := startServer(t, h, false)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req := mustRequest(t, "GET", srv.URL)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	do(t, srv.Client(), req)
	srv.Close()
	sp := tel.spans.GetSpans()[0]
	if got := sp.SpanContext.TraceID().String(); got != traceID {
		t.Errorf("trace id %s, want %s", got, traceID)
	}
	if got := sp.Parent.SpanID().String(); got != parentID || !sp.Parent.IsRemote() {
		t.Errorf("parent %s (remote %v), want remote %s", got, sp.Parent.IsRemote(), parentID)
	}
	e := logs.only(t)
	if e.Attrs["trace_id"] != traceID || e.Attrs["span_id"] != sp.SpanContext.SpanID().String() {
		t.Errorf("log trace_id=%v span_id=%v, want %s %s", e.Attrs["trace_id"], e.Attrs["span_id"], traceID, sp.SpanContext.SpanID())
	}
	if got := trace.SpanContextFromContext(e.Ctx); got.SpanID() != sp.SpanContext.SpanID() {
		t.Errorf("log handler context carries span %s, want %s", got.SpanID(), sp.SpanContext.SpanID())
	}
}

// TestTracingShortBody checks that a body short of its Content-Length with
// nothing wrong on the client's side (a file truncated while it was sent)
// is a server error on the span, unlike a client going away.
func TestTracingShortBody(t *testing.T) {
	tel := newTelemetry(t)
	h := tel.stack(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		w.Write([]byte("hello"))
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	sp := tel.spans.GetSpans()[0]
	if sp.Status.Code != codes.Error || sp.Status.Description != "response body shorter than its Content-Length" {
		t.Errorf("span status %v %q, want Error for a short body", sp.Status.Code, sp.Status.Description)
	}
	var errType string
	for _, kv := range sp.Attributes {
		if kv.Key == "error.type" {
			errType = kv.Value.AsString()
		}
	}
	if errType != string(ErrorTypeShortBody) {
		t.Errorf("error.type %q, want %s", errType, ErrorTypeShortBody)
	}
}

// TestPropagationFields checks that a request is extracted from exactly
// when it carries a header the propagators read, whichever one it is.
func TestPropagationFields(t *testing.T) {
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tests := []struct {
		name        string
		header      http.Header
		wantParent  bool
		wantBaggage string
	}{
		{name: "none", header: http.Header{}},
		{name: "traceparent", header: http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-01"}}, wantParent: true},
		{name: "baggage only", header: http.Header{"Baggage": {"tenant=acme"}}, wantBaggage: "acme"},
		{name: "both", header: http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-01"}, "Baggage": {"tenant=acme"}}, wantParent: true, wantBaggage: "acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			var gotBaggage string
			h := Tracing(WithTracerProvider(tel.tp), WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))(
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					gotBaggage = baggage.FromContext(r.Context()).Member("tenant").Value()
				}))
			req := httptest.NewRequest("GET", "/", nil)
			req.Header = tt.header
			h.ServeHTTP(httptest.NewRecorder(), req)
			sp := tel.spans.GetSpans()[0]
			if got := sp.Parent.IsValid(); got != tt.wantParent {
				t.Errorf("span has a parent: %v, want %v", got, tt.wantParent)
			}
			if tt.wantParent && (sp.SpanContext.TraceID().String() != traceID || sp.Parent.SpanID().String() != parentID) {
				t.Errorf("span %s parent %s, want trace %s parent %s", sp.SpanContext.TraceID(), sp.Parent.SpanID(), traceID, parentID)
			}
			if gotBaggage != tt.wantBaggage {
				t.Errorf("baggage tenant %q, want %q", gotBaggage, tt.wantBaggage)
			}
		})
	}
}
