package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/internal/testutil"
	"github.com/fastpath-go/fastpath/middleware"
)

// records is a slog.Handler keeping each record's level and attributes.
type records struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *records) WithGroup(string) slog.Handler            { return h }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"level": r.Level}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Resolve().Any(); return true })
	h.mu.Lock()
	h.recs = append(h.recs, m)
	h.mu.Unlock()
	return nil
}

// all returns the records so far.
func (h *records) all() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.recs...)
}

// served is a handler that tells the test each time h has returned, so
// the request's log record, span and measurements are all complete.
type served struct {
	h    http.Handler
	done chan struct{}
}

func (s served) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.h.ServeHTTP(w, r)
	s.done <- struct{}{}
}

// wait waits for the next request to have been served. The minute only
// keeps a broken server from hanging the test.
func (s served) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		t.Fatal("a request still unserved after a minute")
	}
}

// TestVideoSession plays a video as a browser does: it starts a bytes=0-
// request, cancels it to seek, and asks for bytes=N- from there. None of
// that is an error. Then a player that stops reading is cut off by the send
// timeout, which the log, the metrics and the span tell apart from a
// cancel.
func TestVideoSession(t *testing.T) {
	const size = 32 << 20
	dir := t.TempDir()
	data := testutil.WriteRandomFile(t, dir, "movie.mp4", size)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	logs := &records{}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer mp.Shutdown(context.Background())
	defer tp.Shutdown(context.Background())
	// Long enough that a reader the busy test machine holds up between
	// reads (seen: a second, under -race with other tests running) is never
	// taken for one that stopped; the paused player below costs this long.
	var h http.Handler = handlers.FileServer(root, handlers.WithSendTimeout(5*time.Second))
	h = middleware.Logger(slog.New(logs))(h)
	h = middleware.Metrics(middleware.WithMeterProvider(mp))(h)
	h = middleware.Tracing(middleware.WithTracerProvider(tp))(h)
	stack := served{h: h, done: make(chan struct{}, 3)}
	srv := httptest.NewUnstartedServer(stack)
	srv.Listener = middleware.Listener(srv.Listener)
	srv.Start()
	defer srv.Close()

	get := func(rangeHeader string) (net.Conn, *http.Response) {
		t.Helper()
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /movie.mp4 HTTP/1.1\r\nHost: x\r\nRange: %s\r\n\r\n", rangeHeader)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusPartialContent {
			t.Fatalf("%s: status %d, want 206", rangeHeader, resp.StatusCode)
		}
		return c, resp
	}

	// The player starts at the beginning, then seeks half way.
	c, resp := get("bytes=0-")
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	c.Close()
	stack.wait(t)
	c, resp = get(fmt.Sprintf("bytes=%d-", size/2))
	got, err := io.ReadAll(resp.Body)
	c.Close()
	if err != nil || string(got) != string(data[size/2:]) {
		t.Fatalf("after the seek: %d bytes, %v; want the second half of the file", len(got), err)
	}
	stack.wait(t)
	// A player that stops reading (a paused tab that keeps its connection).
	c, resp = get("bytes=0-")
	defer c.Close()
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	stack.wait(t) // the send timeout ends it while the player does not read
	recs := logs.all()
	if len(recs) != 3 {
		t.Fatalf("%d request records, want 3", len(recs))
	}

	tests := []struct {
		errType string // a string, as the log record carries it
		level   slog.Level
		body    int64 // -1: at least the 1 MiB read, less than the range
		span    codes.Code
	}{
		{string(middleware.ErrorTypeClientAborted), slog.LevelInfo, -1, codes.Unset},
		{"", slog.LevelInfo, size / 2, codes.Unset},
		{string(middleware.ErrorTypeSendTimeout), slog.LevelWarn, -1, codes.Error},
	}
	ended := spans.GetSpans()
	if len(ended) != len(tests) {
		t.Fatalf("%d spans, want %d", len(ended), len(tests))
	}
	for i, tt := range tests {
		rec := recs[i]
		if got, _ := rec["error.type"].(string); got != tt.errType {
			t.Errorf("request %d: log error.type %q, want %q", i, got, tt.errType)
		}
		if rec["level"] != tt.level {
			t.Errorf("request %d: logged at %v, want %v", i, rec["level"], tt.level)
		}
		body := rec["http.response.body.size"].(int64)
		if (tt.body >= 0 && body != tt.body) || (tt.body < 0 && (body < 1<<20 || body >= size)) {
			t.Errorf("request %d: body size %d, want %d (-1: the bytes that got out)", i, body, tt.body)
		}
		if sf := rec[middleware.SendfileSizeKey].(int64); sf != body-512 {
			t.Errorf("request %d: sendfile size %d, want the body less net/http's first 512 bytes (%d)", i, sf, body-512)
		}
		var spanType string
		for _, kv := range ended[i].Attributes {
			if kv.Key == "error.type" {
				spanType = kv.Value.AsString()
			}
		}
		if spanType != tt.errType || ended[i].Status.Code != tt.span {
			t.Errorf("request %d: span error.type %q status %v, want %q %v", i, spanType, ended[i].Status.Code, tt.errType, tt.span)
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	byType := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "http.server.request.duration" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				v, _ := dp.Attributes.Value(attribute.Key("error.type"))
				byType[v.AsString()] += dp.Count
			}
		}
	}
	want := map[string]uint64{"": 1, string(middleware.ErrorTypeClientAborted): 1, string(middleware.ErrorTypeSendTimeout): 1}
	if fmt.Sprint(byType) != fmt.Sprint(want) {
		t.Errorf("requests by error.type %v, want %v", byType, want)
	}
}
