package ktls_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/ktls"
	"github.com/fastpath-go/fastpath/middleware"
)

// The served stack of issue 20: chi with fastpath's Tracing, Metrics and
// Logger over handlers.FileServer, recording into memory (SDK providers with
// in-memory exporters, a slog handler that keeps its records), and the
// checks of what each signal recorded of a request.

// testIDKey is the attribute every signal carries for a request: its
// X-Test-Id header, so that a test finds the records of its own request.
const testIDKey = "test.id"

// stack is the handler both servers of a test serve (the HTTPS one and its
// plain twin), and what it recorded.
type stack struct {
	handler http.Handler
	logs    *logCapture
	spans   *tracetest.InMemoryExporter
	reader  *sdkmetric.ManualReader

	mu   sync.Mutex
	done map[string]chan handled
	gone map[string]chan struct{} // closed when the request's context ends mid-handler
}

// handled is what the file server saw of one request.
type handled struct {
	tls     *tls.ConnectionState // r.TLS, as the handler got it
	state   ktls.State           // ktls.FromContext
	stateOK bool
}

type handledKey struct{}

func newStack(t *testing.T, root *os.Root) *stack {
	t.Helper()
	s := &stack{
		logs:   &logCapture{},
		spans:  tracetest.NewInMemoryExporter(),
		reader: sdkmetric.NewManualReader(),
		done:   map[string]chan handled{},
		gone:   map[string]chan struct{}{},
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(s.spans))
	t.Cleanup(func() {
		mp.Shutdown(context.Background())
		tp.Shutdown(context.Background())
	})
	id := middleware.WithAttributes(func(r *http.Request) []attribute.KeyValue {
		return []attribute.KeyValue{attribute.String(testIDKey, r.Header.Get("X-Test-Id"))}
	})
	r := chi.NewRouter()
	// report is outermost: when it hears back, every middleware has
	// recorded the request (the span is exported as it ends).
	r.Use(s.report,
		middleware.Tracing(middleware.WithTracerProvider(tp), id),
		middleware.Metrics(middleware.WithMeterProvider(mp), id),
		middleware.Logger(slog.New(s.logs), id))
	r.Handle("/*", s.note(handlers.FileServer(root, handlers.WithEncodings("gzip"))))
	s.handler = r
	return s
}

func (s *stack) ch(id string) chan handled {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.done[id]
	if !ok {
		c = make(chan handled, 1)
		s.done[id] = c
	}
	return c
}

func (s *stack) goneCh(id string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.gone[id]
	if !ok {
		c = make(chan struct{})
		s.gone[id] = c
	}
	return c
}

// report passes on what note found once the rest of the stack is done with
// the request.
func (s *stack) report(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := new(handled)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), handledKey{}, h)))
		if id := r.Header.Get("X-Test-Id"); id != "" {
			s.ch(id) <- *h
		}
	})
}

// note keeps what the file server's request carries: the session in r.TLS
// (which fastpath's first middleware fills in for a kernel TLS connection)
// and ktls's State. It also closes the request's gone channel if the
// request's context ends while the file server still serves it: net/http
// ends it then when its read of the connection fails or meets the end.
func (s *stack) note(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := r.Context().Value(handledKey{}).(*handled); ok {
			if r.TLS != nil {
				cs := *r.TLS
				h.tls = &cs
			}
			h.state, h.stateOK = ktls.FromContext(r.Context())
		}
		var returned atomic.Bool
		if id := r.Header.Get("X-Test-Id"); id != "" {
			context.AfterFunc(r.Context(), func() {
				if !returned.Load() {
					close(s.goneCh(id))
				}
			})
		}
		next.ServeHTTP(w, r)
		returned.Store(true)
	})
}

// waitGone waits until the server has seen request id's client leave while
// the file server was sending the response.
func (s *stack) waitGone(t *testing.T, id string) {
	t.Helper()
	select {
	case <-s.goneCh(id):
	case <-time.After(2 * time.Minute):
		t.Fatalf("request %s: the server never saw the client leave", id)
	}
}

// wait returns what the handler saw of request id, once every middleware
// has recorded it. The timeout only keeps a broken server from hanging the
// guest; the client has its response (or has reset) before this is called.
func (s *stack) wait(t *testing.T, id string) handled {
	t.Helper()
	select {
	case h := <-s.ch(id):
		return h
	case <-time.After(2 * time.Minute):
		t.Fatalf("request %s: the stack never finished it", id)
		return handled{}
	}
}

// logCapture is a slog.Handler that keeps every record, at every level.
type logCapture struct {
	mu      sync.Mutex
	entries []logEntry
}

type logEntry struct {
	level slog.Level
	msg   string
	attrs map[string]any
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *logCapture) WithGroup(string) slog.Handler            { return c }

func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	e := logEntry{level: r.Level, msg: r.Message, attrs: map[string]any{}}
	r.Attrs(func(a slog.Attr) bool {
		e.attrs[a.Key] = a.Value.Resolve().Any()
		return true
	})
	c.mu.Lock()
	c.entries = append(c.entries, e)
	c.mu.Unlock()
	return nil
}

// byID returns the one record of request id.
func (c *logCapture) byID(t *testing.T, id string) logEntry {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var found []logEntry
	for _, e := range c.entries {
		if e.attrs[testIDKey] == id {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("request %s: %d log records, want 1", id, len(found))
	}
	return found[0]
}

// count is a number of bytes a record must carry: exactly one value, any
// in a range (what a reset download got out), or none at all.
type count struct{ min, max int64 }

func exactly(n int64) count       { return count{n, n} }
func within(min, max int64) count { return count{min, max} }

// absent is the count of a key that must not be there.
var absent = count{-1, -1}

func (c count) String() string {
	switch {
	case c == absent:
		return "absent"
	case c.min == c.max:
		return fmt.Sprint(c.min)
	}
	return fmt.Sprintf("%d..%d", c.min, c.max)
}

func (c count) holds(n int64) bool { return c != absent && c.min <= n && n <= c.max }

// want is what the records of one request must say. Every key is checked
// exactly: a nil value in the maps built from it means the key is absent.
type want struct {
	status int
	body   count // http.response.body.size
	scheme string
	// proto is network.protocol.version; "" means 1.1.
	proto string
	// ktls is nil for a connection ktls.NewListener did not accept: then
	// no fastpath.tls key at all.
	ktls *ktls.State
	// sendfile is fastpath.response.sendfile.size, absent without a
	// middleware.Listener connection beneath the request.
	sendfile   count
	copyReason middleware.CopyReason
	// copied is fastpath.server.response.copied.size's one value; 0:
	// none recorded.
	copied    int64
	errorType middleware.ErrorType
	level     slog.Level
}

// keys returns the attributes log records and spans share: nil for a key
// that must be absent, a count for a number in a range.
func (w want) keys() map[string]any {
	m := map[string]any{
		"http.response.status_code": int64(w.status),
		"network.protocol.version":  w.protoVersion(),
		"http.response.body.size":   w.body,
		"http.route":                "/*",
		middleware.KTLSKey:          nil,
		middleware.KTLSFallbackKey:  nil,
		middleware.SendfileSizeKey:  nil,
		middleware.SpliceSizeKey:    nil,
		middleware.CopyReasonKey:    nil,
		middleware.CopyWrapperKey:   nil,
		"error.type":                nil,
	}
	if w.ktls != nil {
		m[middleware.KTLSKey] = w.ktls.Kernel
		if !w.ktls.Kernel {
			m[middleware.KTLSFallbackKey] = string(w.ktls.Reason)
		}
	}
	if w.sendfile != absent {
		m[middleware.SendfileSizeKey] = w.sendfile
		m[middleware.SpliceSizeKey] = int64(0)
	}
	if w.copyReason != "" {
		m[middleware.CopyReasonKey] = string(w.copyReason)
	}
	if w.errorType != "" {
		m["error.type"] = string(w.errorType)
	}
	return m
}

func (w want) protoVersion() string {
	if w.proto == "" {
		return "1.1"
	}
	return w.proto
}

// matches reports whether a recorded value (ok: the key is there) is what
// keys asks for.
func matches(got any, ok bool, want any) bool {
	switch w := want.(type) {
	case nil:
		return !ok
	case count:
		n, isInt := got.(int64)
		return ok && isInt && w.holds(n)
	}
	return ok && got == want
}

// check checks everything recorded of request id against w: what the
// handler saw (r.TLS the session client negotiated, nil for plain HTTP),
// the log record, the span and the metrics.
func (s *stack) check(t *testing.T, id string, w want, client *tls.ConnectionState) {
	t.Helper()
	h := s.wait(t, id)
	if err := sameSession(h.tls, client); err != nil {
		t.Errorf("request %s: the handler's r.TLS: %v", id, err)
	}
	switch {
	case w.ktls == nil && h.stateOK:
		t.Errorf("request %s: ktls.FromContext = %+v, want none", id, h.state)
	case w.ktls != nil && (!h.stateOK || h.state != *w.ktls):
		t.Errorf("request %s: ktls.FromContext = %+v (found %v), want %+v", id, h.state, h.stateOK, *w.ktls)
	}

	e := s.logs.byID(t, id)
	if e.level != w.level {
		t.Errorf("request %s: logged at %v, want %v", id, e.level, w.level)
	}
	for k, v := range w.keys() {
		if got, ok := e.attrs[k]; !matches(got, ok, v) {
			t.Errorf("request %s: log %s = %#v, want %v", id, k, got, v)
		}
	}

	span := s.span(t, id)
	spanWant := w.keys()
	spanWant["url.scheme"] = w.scheme
	for k, v := range spanWant {
		got, ok := span[k]
		if !matches(got.AsInterface(), ok, v) {
			t.Errorf("request %s: span %s = %#v, want %v", id, k, got.AsInterface(), v)
		}
	}

	s.checkMetrics(t, id, w)
}

// sameSession compares the handler's r.TLS with the client's view of the
// session.
func sameSession(server, client *tls.ConnectionState) error {
	switch {
	case client == nil && server == nil:
		return nil
	case client == nil:
		return fmt.Errorf("%s, want nil (plain HTTP)", tls.VersionName(server.Version))
	case server == nil:
		return fmt.Errorf("nil, want %s %s", tls.VersionName(client.Version), tls.CipherSuiteName(client.CipherSuite))
	}
	if server.Version != client.Version || server.CipherSuite != client.CipherSuite ||
		server.NegotiatedProtocol != client.NegotiatedProtocol || server.DidResume != client.DidResume ||
		!server.HandshakeComplete || server.ServerName != client.ServerName {
		return fmt.Errorf("%s %s alpn %q resumed %v complete %v sni %q; the client has %s %s alpn %q resumed %v sni %q",
			tls.VersionName(server.Version), tls.CipherSuiteName(server.CipherSuite), server.NegotiatedProtocol, server.DidResume, server.HandshakeComplete, server.ServerName,
			tls.VersionName(client.Version), tls.CipherSuiteName(client.CipherSuite), client.NegotiatedProtocol, client.DidResume, client.ServerName)
	}
	return nil
}

// span returns the attributes of the one span of request id.
func (s *stack) span(t *testing.T, id string) map[string]attribute.Value {
	t.Helper()
	var found []map[string]attribute.Value
	for _, sp := range s.spans.GetSpans() {
		attrs := map[string]attribute.Value{}
		for _, kv := range sp.Attributes {
			attrs[string(kv.Key)] = kv.Value
		}
		if attrs[testIDKey].AsString() == id {
			found = append(found, attrs)
		}
	}
	if len(found) != 1 {
		t.Fatalf("request %s: %d spans, want 1", id, len(found))
	}
	return found[0]
}

// checkMetrics checks the request's measurements: one duration with its
// url.scheme and error.type, the sendfile bytes, and the copied bytes.
func (s *stack) checkMetrics(t *testing.T, id string, w want) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := s.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	ms := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			ms[m.Name] = m.Data
		}
	}
	mine := func(set attribute.Set) bool {
		v, _ := set.Value(testIDKey)
		return v.AsString() == id
	}

	var durations []metricdata.HistogramDataPoint[float64]
	if h, ok := ms["http.server.request.duration"].(metricdata.Histogram[float64]); ok {
		for _, dp := range h.DataPoints {
			if mine(dp.Attributes) {
				durations = append(durations, dp)
			}
		}
	}
	if len(durations) != 1 || durations[0].Count != 1 {
		t.Fatalf("request %s: %d http.server.request.duration points, want 1 of count 1: %+v", id, len(durations), durations)
	}
	attrs := durations[0].Attributes
	scheme, _ := attrs.Value("url.scheme")
	errType, _ := attrs.Value("error.type")
	proto, _ := attrs.Value("network.protocol.version")
	if scheme.AsString() != w.scheme || errType.AsString() != string(w.errorType) || proto.AsString() != w.protoVersion() {
		t.Errorf("request %s: http.server.request.duration has url.scheme %q error.type %q network.protocol.version %q, want %q %q %q",
			id, scheme.AsString(), errType.AsString(), proto.AsString(), w.scheme, w.errorType, w.protoVersion())
	}

	copied := absent
	if w.copied > 0 {
		copied = exactly(w.copied)
	}
	for _, m := range []struct {
		name string
		want count
	}{
		{middleware.SendfileSizeMetric, w.sendfile},
		{middleware.CopiedSizeMetric, copied},
	} {
		var got []metricdata.HistogramDataPoint[int64]
		if h, ok := ms[m.name].(metricdata.Histogram[int64]); ok {
			for _, dp := range h.DataPoints {
				if mine(dp.Attributes) {
					got = append(got, dp)
				}
			}
		}
		switch {
		case m.want == absent && len(got) != 0:
			t.Errorf("request %s: %s has %d points, want none", id, m.name, len(got))
		case m.want != absent && (len(got) != 1 || got[0].Count != 1 || !m.want.holds(got[0].Sum)):
			var sums []int64
			for _, dp := range got {
				sums = append(sums, dp.Sum)
			}
			t.Errorf("request %s: %s has sums %v over %d points, want one measurement of %v", id, m.name, sums, len(got), m.want)
		}
	}
}
