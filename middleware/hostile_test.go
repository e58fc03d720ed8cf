package middleware

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/propagation"

	"github.com/fastpath-go/fastpath/internal/testutil"
)

// hostileRequest returns a request whose path, query, headers and user agent
// carry line breaks, terminal escapes, NULs and invalid UTF-8, as a client or
// a buggy proxy could hand them to a handler.
func hostileRequest() *http.Request {
	r := httptest.NewRequest("GET", "/ok", nil)
	r.URL.Path = "/a\nlevel=ERROR msg=forged\r\x1b[31m\x00\xff"
	r.URL.RawQuery = "q=1\n2"
	r.Header.Set("User-Agent", "evil\n{\"level\":\"ERROR\"}\x1b]0;pwned\x07\xc3\x28")
	r.Header.Set("Range", "bytes=0-1\nforged=1")
	r.Header.Set("X-Request-Id", "id\nforged=1\x00")
	r.Header.Set("X-Debug", "line1\r\nline2")
	r.RemoteAddr = "192.0.2.1:1234\nforged"
	return r
}

// TestLogInjection checks that hostile request data never breaks a log line,
// in JSON and text, and that url.path is logged escaped.
func TestLogInjection(t *testing.T) {
	tests := []struct {
		name    string
		handler func(io.Writer) slog.Handler
	}{
		{"json", func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }},
		{"text", func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			r := chi.NewRouter()
			r.Use(chimw.RequestID, Logger(slog.New(tt.handler(&buf)), WithRequestHeaders("X-Debug"), WithURLQuery()))
			r.Get("/ok", func(w http.ResponseWriter, r *http.Request) {})
			r.ServeHTTP(httptest.NewRecorder(), hostileRequest())
			out := buf.String()
			if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
				t.Fatalf("want exactly one line, got %q", out)
			}
			for _, bad := range []string{"\r", "\x1b", "\x00", "\x07"} {
				if strings.Contains(out, bad) {
					t.Errorf("raw %q in log line %q", bad, out)
				}
			}
			if !strings.Contains(out, "%0Alevel=ERROR%20msg=forged%0D%1B%5B31m%00%FF") {
				t.Errorf("url.path not escaped in %q", out)
			}
			if tt.name == "json" {
				var m map[string]any
				if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
					t.Fatalf("not one JSON object: %v: %q", err, out)
				}
				if m["level"] != "WARN" || m["msg"] != logMessage {
					t.Errorf("level/msg forged: %v %v", m["level"], m["msg"])
				}
				if got := m["request_id"]; got != "id\nforged=1\x00" {
					t.Errorf("request_id = %q, want the client's value, escaped by the handler", got)
				}
			}
		})
	}
}

// TestRedaction checks that credentials are never logged in clear.
func TestRedaction(t *testing.T) {
	logs, l := newCapture()
	h := Logger(l, WithRequestHeaders("authorization", "Cookie", "Set-Cookie", "Proxy-Authorization", "X-Tenant", "X-Absent"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest("GET", "/?token=secret", nil)
	r.Header.Set("Authorization", "Bearer secret")
	r.Header.Set("Cookie", "session=secret")
	r.Header.Set("Set-Cookie", "a=secret")
	r.Header.Set("Proxy-Authorization", "Basic secret")
	r.Header.Add("X-Tenant", "acme")
	r.Header.Add("X-Tenant", "beta")
	h.ServeHTTP(httptest.NewRecorder(), r)
	e := logs.only(t)
	want := map[string]any{
		"http.request.header.authorization":       "[REDACTED]",
		"http.request.header.cookie":              "[REDACTED]",
		"http.request.header.set-cookie":          "[REDACTED]",
		"http.request.header.proxy-authorization": "[REDACTED]",
		"http.request.header.x-tenant":            "acme, beta",
	}
	for k, v := range want {
		if e.Attrs[k] != v {
			t.Errorf("%s = %v, want %v", k, e.Attrs[k], v)
		}
	}
	if _, ok := e.Attrs["http.request.header.x-absent"]; ok {
		t.Error("absent header logged")
	}
	if _, ok := e.Attrs["url.query"]; ok {
		t.Error("query logged without WithURLQuery")
	}
	if s := fmt.Sprint(e.Attrs); strings.Contains(s, "secret") {
		t.Errorf("a secret reached the log: %s", s)
	}
}

// TestCardinality sends 10,000 requests with random paths and methods through
// chi and ServeMux and checks that the metrics gain no attribute values.
func TestCardinality(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) {}
	apps := map[string]http.Handler{
		"chi": func() http.Handler {
			r := chi.NewRouter()
			r.Get("/users/{id}", ok)
			return r
		}(),
		"mux": func() http.Handler {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /users/{id}", ok)
			return mux
		}(),
	}
	for name, app := range apps {
		t.Run(name, func(t *testing.T) {
			tel := newTelemetry(t)
			h := tel.stack(app)
			rng := rand.New(rand.NewPCG(1, 2))
			methods := []string{"GET", "POST", "get", "PROPFIND", "X-" + strings.Repeat("Y", 100)}
			for i := range 10000 {
				var path string
				if i%3 == 0 {
					path = fmt.Sprintf("/users/%d", rng.Uint64())
				} else {
					path = "/" + url.PathEscape(fmt.Sprintf("%x\x00%c", rng.Uint64(), rune(rng.IntN(0x10ffff))))
				}
				r := httptest.NewRequest("GET", "/", nil)
				r.Method = methods[rng.IntN(len(methods))] + strings.Repeat("Z", i%2*rng.IntN(3))
				r.URL.Path, r.URL.RawPath = path, ""
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
			sets := map[string]bool{}
			for _, m := range tel.collect(t) {
				var pts map[string]point
				if m.Name == "http.server.active_requests" {
					continue
				}
				pts = histogramPoints(t, m)
				for s := range pts {
					sets[s] = true
				}
			}
			// GET and _OTHER, each matched (200) or not (404/405): at most
			// a handful of sets, however many paths and methods were sent.
			if len(sets) > 6 {
				t.Errorf("%d attribute sets after 10,000 random requests:\n%s", len(sets), strings.Join(keys(sets), "\n"))
			}
			for s := range sets {
				if strings.Contains(s, "http.route") && !strings.Contains(s, "http.route=/users/{id}") {
					t.Errorf("unexpected route in %s", s)
				}
			}
		})
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSpoofedTraceHeaders checks that malformed or hostile trace headers
// never crash the request and never become the server span's parent.
func TestSpoofedTraceHeaders(t *testing.T) {
	tests := []struct {
		name       string
		header     http.Header
		wantParent string // "" for a new root span
	}{
		{name: "garbage", header: http.Header{"Traceparent": {"not a traceparent"}}},
		{name: "all-zero trace id", header: http.Header{"Traceparent": {"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}}},
		{name: "version ff", header: http.Header{"Traceparent": {"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}},
		{name: "huge", header: http.Header{"Traceparent": {strings.Repeat("0", 1<<16)}, "Tracestate": {strings.Repeat("a=b,", 1<<14)}}},
		{name: "control characters", header: http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n\x00"}}},
		{name: "valid", header: http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}, wantParent: "00f067aa0ba902b7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			logs, l := newCapture()
			h := Tracing(WithTracerProvider(tel.tp), WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))(
				Logger(l)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
			r := httptest.NewRequest("GET", "/", nil)
			for k, v := range tt.header {
				r.Header[k] = v
			}
			r.Header.Set("Baggage", "k=v\x00;;;="+strings.Repeat("x", 10000))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			sp := tel.spans.GetSpans()[0]
			if !sp.SpanContext.IsValid() {
				t.Fatal("span context not valid")
			}
			parent := ""
			if sp.Parent.IsValid() {
				parent = sp.Parent.SpanID().String()
			}
			if parent != tt.wantParent {
				t.Errorf("parent %q, want %q", parent, tt.wantParent)
			}
			if logs.only(t).Attrs["trace_id"] != sp.SpanContext.TraceID().String() {
				t.Error("log trace_id differs from the span")
			}
		})
	}
}

// TestHostileRequestsOnTheWire sends raw requests with hostile bytes over a
// real connection and checks each is answered (or refused by net/http) and
// logged on one line.
func TestHostileRequestsOnTheWire(t *testing.T) {
	var buf testutil.LockedBuffer
	srv := startServer(t, Logger(slog.New(slog.NewJSONHandler(&buf, nil)))(http.HandlerFunc(http.NotFound)), true)
	requests := []struct {
		raw    string
		logged bool // false: net/http refuses it before any handler runs
	}{
		{"GET /%0d%0aforged%1b HTTP/1.1\r\nHost: x\r\nUser-Agent: \xff\xfe\"}\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: \x1b[2J\r\n\r\n", false},
		{"GET /" + strings.Repeat("a/", 40) + " HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"BREW /pot HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", true},
		{"GET /ok HTTP/1.1\r\nHost: x\r\nRange: bytes=999999999999999999999-\r\n\r\n", true},
		{"GET /ok HTTP/1.0\r\n\r\n", true},
	}
	logged := 0
	for _, req := range requests {
		raw := req.raw
		if req.logged {
			logged++
		}
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, raw)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%q: %v", raw[:20], err)
		}
		resp.Body.Close()
		c.Close()
	}
	srv.Close()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != logged {
		t.Fatalf("got %d log lines, want %d", len(lines), logged)
	}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("line is not one JSON object: %v: %.200q", err, line)
		}
	}
	if !strings.Contains(lines[0], `"url.path":"/%0d%0aforged%1b"`) || !strings.Contains(lines[0], `"user_agent.original":"\ufffd\ufffd\"}"`) {
		t.Errorf("hostile path or user agent not escaped: %.300s", lines[0])
	}
}
