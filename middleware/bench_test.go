package middleware

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// benchWriter is a reusable ResponseWriter with net/http's optional
// interfaces, so benchmarks measure the middleware rather than a recorder.
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteString(s string) (int, error) {
	return len(s), nil
}
func (w *benchWriter) ReadFrom(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }
func (w *benchWriter) Flush()                              {}

// benchRouter returns a chi router with one parameterised route, using mws.
func benchRouter(mws ...func(http.Handler) http.Handler) http.Handler {
	r := chi.NewRouter()
	r.Use(mws...)
	r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello")
	})
	return r
}

func runBench(b *testing.B, h http.Handler) {
	req := httptest.NewRequest("GET", "/users/42", nil)
	req.Header.Set("User-Agent", "bench/1.0")
	req.RemoteAddr = "192.0.2.1:1234"
	w := &benchWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkLogger measures the per-request cost of a logging middleware on
// a chi router, against the bare router and chi's own Logger, all writing to
// io.Discard.
func BenchmarkLogger(b *testing.B) {
	chiLogger := chimw.RequestLogger(&chimw.DefaultLogFormatter{
		Logger:  log.New(io.Discard, "", log.LstdFlags),
		NoColor: true,
	})
	b.Run("bare", func(b *testing.B) { runBench(b, benchRouter()) })
	b.Run("chi.Logger", func(b *testing.B) { runBench(b, benchRouter(chiLogger)) })
	b.Run("fastpath.Logger/text", func(b *testing.B) {
		runBench(b, benchRouter(Logger(slog.New(slog.NewTextHandler(io.Discard, nil)))))
	})
	b.Run("fastpath.Logger/json", func(b *testing.B) {
		runBench(b, benchRouter(Logger(slog.New(slog.NewJSONHandler(io.Discard, nil)))))
	})
	b.Run("fastpath.Logger/disabled", func(b *testing.B) {
		runBench(b, benchRouter(Logger(slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError})))))
	})
}

// noopExporter drops spans, so benchmarks measure making them.
type noopExporter struct{}

func (noopExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (noopExporter) Shutdown(context.Context) error                             { return nil }

// benchProviders returns SDK providers as a service would run them: every
// span sampled and exported (to nowhere), metrics aggregated in memory.
func benchProviders(b *testing.B) (*sdkmetric.MeterProvider, *sdktrace.TracerProvider) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(noopExporter{})))
	b.Cleanup(func() {
		mp.Shutdown(context.Background())
		tp.Shutdown(context.Background())
	})
	return mp, tp
}

// BenchmarkStack measures the per-request cost of whole middleware stacks on
// a chi router, in one run: the bare router, chi's Logger, fastpath's
// middlewares alone and together, and otelhttp with the same SDK providers.
func BenchmarkStack(b *testing.B) {
	chiLogger := chimw.RequestLogger(&chimw.DefaultLogFormatter{
		Logger:  log.New(io.Discard, "", log.LstdFlags),
		NoColor: true,
	})
	jsonLog := slog.New(slog.NewJSONHandler(io.Discard, nil))
	b.Run("bare", func(b *testing.B) { runBench(b, benchRouter()) })
	b.Run("chi.Logger", func(b *testing.B) { runBench(b, benchRouter(chiLogger)) })
	b.Run("fastpath/Logger", func(b *testing.B) { runBench(b, benchRouter(Logger(jsonLog))) })
	b.Run("fastpath/Metrics", func(b *testing.B) {
		mp, _ := benchProviders(b)
		runBench(b, benchRouter(Metrics(WithMeterProvider(mp))))
	})
	b.Run("fastpath/Tracing", func(b *testing.B) {
		_, tp := benchProviders(b)
		runBench(b, benchRouter(Tracing(WithTracerProvider(tp))))
	})
	b.Run("fastpath/Logger+Metrics", func(b *testing.B) {
		mp, _ := benchProviders(b)
		runBench(b, benchRouter(Metrics(WithMeterProvider(mp)), Logger(jsonLog)))
	})
	b.Run("fastpath/Logger+Metrics+Tracing", func(b *testing.B) {
		mp, tp := benchProviders(b)
		runBench(b, benchRouter(Tracing(WithTracerProvider(tp)), Metrics(WithMeterProvider(mp)), Logger(jsonLog)))
	})
	b.Run("otelhttp", func(b *testing.B) {
		mp, tp := benchProviders(b)
		runBench(b, benchRouter(otelhttp.NewMiddleware("server",
			otelhttp.WithMeterProvider(mp), otelhttp.WithTracerProvider(tp))))
	})
}

// BenchmarkFloor measures what the other libraries cost on their own for one
// request, so BenchmarkStack can be read: an SDK server span with the
// conventions' attributes, and one slog JSON record with Logger's keys.
func BenchmarkFloor(b *testing.B) {
	b.Run("sdk-span", func(b *testing.B) {
		_, tp := benchProviders(b)
		tr := tp.Tracer("floor")
		ctx := context.Background()
		start := []attribute.KeyValue{
			attribute.String("http.request.method", "GET"), attribute.String("url.path", "/users/42"),
			attribute.String("url.scheme", "http"), attribute.String("server.address", "example.com"),
			attribute.String("client.address", "192.0.2.1"), attribute.String("network.peer.address", "192.0.2.1"),
			attribute.Int("network.peer.port", 1234), attribute.String("user_agent.original", "bench/1.0"),
			attribute.String("network.protocol.version", "1.1"),
		}
		end := []attribute.KeyValue{
			attribute.Int("http.response.status_code", 200), attribute.String("http.route", "/users/{id}"),
			attribute.Int("http.request.body.size", 0), attribute.Int("http.response.body.size", 5),
		}
		b.ReportAllocs()
		for b.Loop() {
			_, sp := tr.Start(ctx, "GET", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(start...))
			sp.SetAttributes(end...)
			sp.SetName("GET /users/{id}")
			sp.End()
		}
	})
	b.Run("slog-json", func(b *testing.B) {
		l := slog.New(slog.NewJSONHandler(io.Discard, nil))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			l.LogAttrs(ctx, slog.LevelInfo, logMessage,
				slog.String("http.request.method", "GET"),
				slog.String("url.path", "/users/42"),
				slog.String("http.route", "/users/{id}"),
				slog.Int("http.response.status_code", 200),
				slog.Int64("http.response.body.size", 5),
				slog.Duration("duration", 1500*time.Microsecond),
				slog.Duration("ttfb", 1200*time.Microsecond),
				slog.String("client.address", "192.0.2.1"),
				slog.String("user_agent.original", "bench/1.0"),
				slog.String("network.protocol.version", "1.1"),
			)
		}
	})
}
