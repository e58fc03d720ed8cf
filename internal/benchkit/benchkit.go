// Package benchkit is the harness the per-request benchmarks share, so
// fastpath's own benchmarks (beside the code in middleware) and the
// comparisons with other libraries (in the tools module) measure the same
// request through the same router and writer.
package benchkit

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Writer is a reusable ResponseWriter with exactly the method set of
// net/http's HTTP/1 ResponseWriter, so a benchmark measures the middleware as
// a real server runs it, rather than a recorder.
type Writer struct {
	h    http.Header
	Code int
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer { return &Writer{h: make(http.Header)} }

// Header returns the header map.
func (w *Writer) Header() http.Header { return w.h }

// WriteHeader records the status.
func (w *Writer) WriteHeader(code int) { w.Code = code }

// Write discards p.
func (w *Writer) Write(p []byte) (int, error) { return len(p), nil }

// WriteString discards s.
func (w *Writer) WriteString(s string) (int, error) { return len(s), nil }

// ReadFrom drains r.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }

// Flush does nothing.
func (w *Writer) Flush() {}

// FlushError does nothing.
func (w *Writer) FlushError() error { return nil }

// CloseNotify returns nil: nothing closes.
func (w *Writer) CloseNotify() <-chan bool { return nil }

// Hijack refuses: there is no connection.
func (w *Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, errors.ErrUnsupported
}

// SetReadDeadline does nothing.
func (w *Writer) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline does nothing.
func (w *Writer) SetWriteDeadline(time.Time) error { return nil }

// EnableFullDuplex does nothing.
func (w *Writer) EnableFullDuplex() error { return nil }

// Route is the pattern of the one route Router serves, and Path the path
// every benchmark request asks for.
const (
	Route = "/users/{id}"
	Path  = "/users/42"
)

// Router returns a chi router using mws with one parameterised route whose
// handler writes a 5-byte body.
func Router(mws ...func(http.Handler) http.Handler) http.Handler {
	r := chi.NewRouter()
	r.Use(mws...)
	r.Get(Route, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello")
	})
	return r
}

// Request returns the benchmark request: a GET for Path with a User-Agent,
// from a fixed peer address.
func Request() *http.Request {
	req := httptest.NewRequest("GET", Path, nil)
	req.Header.Set("User-Agent", "bench/1.0")
	req.RemoteAddr = "192.0.2.1:1234"
	return req
}

// Run measures h serving Request, reporting allocations.
func Run(b *testing.B, h http.Handler) {
	req := Request()
	w := NewWriter()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// discard drops spans, so benchmarks measure making them.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// Providers returns SDK providers as a service would run them: every span
// sampled and exported (to nowhere), metrics aggregated in memory. They are
// shut down when b ends.
func Providers(b testing.TB) (*sdkmetric.MeterProvider, *sdktrace.TracerProvider) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(discard{})))
	b.Cleanup(func() {
		mp.Shutdown(context.Background())
		tp.Shutdown(context.Background())
	})
	return mp, tp
}
