package middleware

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"testing"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/fastpath-go/fastpath/internal/benchkit"
)

// BenchmarkLogger measures the per-request cost of a logging middleware on
// a chi router, against the bare router and chi's own Logger, all writing to
// io.Discard.
func BenchmarkLogger(b *testing.B) {
	chiLogger := chimw.RequestLogger(&chimw.DefaultLogFormatter{
		Logger:  log.New(io.Discard, "", log.LstdFlags),
		NoColor: true,
	})
	b.Run("bare", func(b *testing.B) { benchkit.Run(b, benchkit.Router()) })
	b.Run("chi.Logger", func(b *testing.B) { benchkit.Run(b, benchkit.Router(chiLogger)) })
	b.Run("fastpath.Logger/text", func(b *testing.B) {
		benchkit.Run(b, benchkit.Router(Logger(slog.New(slog.NewTextHandler(io.Discard, nil)))))
	})
	b.Run("fastpath.Logger/json", func(b *testing.B) {
		benchkit.Run(b, benchkit.Router(Logger(slog.New(slog.NewJSONHandler(io.Discard, nil)))))
	})
	b.Run("fastpath.Logger/disabled", func(b *testing.B) {
		benchkit.Run(b, benchkit.Router(Logger(slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError})))))
	})
}

// BenchmarkStack measures the per-request cost of whole middleware stacks on
// a chi router, in one run: the bare router, chi's Logger, and fastpath's
// middlewares alone and together. The comparison with otelhttp and httplog,
// which this module does not depend on, is in the tools module
// (tools/perrequest), on the same harness.
func BenchmarkStack(b *testing.B) {
	chiLogger := chimw.RequestLogger(&chimw.DefaultLogFormatter{
		Logger:  log.New(io.Discard, "", log.LstdFlags),
		NoColor: true,
	})
	jsonLog := slog.New(slog.NewJSONHandler(io.Discard, nil))
	b.Run("bare", func(b *testing.B) { benchkit.Run(b, benchkit.Router()) })
	b.Run("chi.Logger", func(b *testing.B) { benchkit.Run(b, benchkit.Router(chiLogger)) })
	b.Run("fastpath/Logger", func(b *testing.B) { benchkit.Run(b, benchkit.Router(Logger(jsonLog))) })
	b.Run("fastpath/Metrics", func(b *testing.B) {
		mp, _ := benchkit.Providers(b)
		benchkit.Run(b, benchkit.Router(Metrics(WithMeterProvider(mp))))
	})
	b.Run("fastpath/Tracing", func(b *testing.B) {
		_, tp := benchkit.Providers(b)
		benchkit.Run(b, benchkit.Router(Tracing(WithTracerProvider(tp))))
	})
	b.Run("fastpath/Logger+Metrics", func(b *testing.B) {
		mp, _ := benchkit.Providers(b)
		benchkit.Run(b, benchkit.Router(Metrics(WithMeterProvider(mp)), Logger(jsonLog)))
	})
	b.Run("fastpath/Logger+Metrics+Tracing", func(b *testing.B) {
		mp, tp := benchkit.Providers(b)
		benchkit.Run(b, benchkit.Router(Tracing(WithTracerProvider(tp)), Metrics(WithMeterProvider(mp)), Logger(jsonLog)))
	})
}

// BenchmarkSetAttributes measures the whole stack serving a handler that
// does not call SetAttributes (its cost when unused, to compare with
// BenchmarkStack's Logger+Metrics+Tracing: the same allocations), one that
// adds two attributes, and, for scale, the same two given by WithAttributes.
func BenchmarkSetAttributes(b *testing.B) {
	jsonLog := slog.New(slog.NewJSONHandler(io.Discard, nil))
	handler := func(set bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if set {
				SetAttributes(r.Context(), attribute.String("app.order", "A-7"), attribute.Int("app.items", 3))
			}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello")
		})
	}
	with := WithAttributes(func(*http.Request) []attribute.KeyValue {
		return []attribute.KeyValue{attribute.String("app.order", "A-7"), attribute.Int("app.items", 3)}
	})
	for _, bc := range []struct {
		name string
		set  bool
		opts []Option
	}{
		{"unused", false, nil},
		{"two", true, nil},
		{"WithAttributes/two", false, []Option{with}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			mp, tp := benchkit.Providers(b)
			r := chi.NewRouter()
			r.Use(Tracing(append(bc.opts, WithTracerProvider(tp))...),
				Metrics(WithMeterProvider(mp)),
				Logger(jsonLog, bc.opts...))
			r.Get(benchkit.Route, handler(bc.set).ServeHTTP)
			benchkit.Run(b, r)
		})
	}
}

// BenchmarkCopyDiagnosis measures the whole stack serving a 64 KiB body
// through ReadFrom from a file, which the diagnosis lets pass at the cost of
// a field store (no Listener here, so no counters are read), and from a
// buffer, which it diagnoses as copied: the log record and span carry the
// reason and the copied-size histogram records it.
func BenchmarkCopyDiagnosis(b *testing.B) {
	jsonLog := slog.New(slog.NewJSONHandler(io.Discard, nil))
	data := make([]byte, 64<<10)
	f, err := os.CreateTemp(b.TempDir(), "body")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		body func() io.Reader
	}{
		{"file", func() io.Reader { f.Seek(0, io.SeekStart); return io.LimitReader(f, int64(len(data))) }},
		{"copied", func() io.Reader { return bytes.NewReader(data) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			mp, tp := benchkit.Providers(b)
			r := chi.NewRouter()
			r.Use(Tracing(WithTracerProvider(tp)), Metrics(WithMeterProvider(mp)), Logger(jsonLog))
			r.Get(benchkit.Route, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "65536")
				w.(io.ReaderFrom).ReadFrom(bc.body())
			})
			benchkit.Run(b, r)
		})
	}
}

// BenchmarkFloor measures what the other libraries cost on their own for one
// request, so BenchmarkStack can be read: an SDK server span with the
// conventions' attributes, the SDK measurements Metrics makes (the active
// request count up and down, and the duration and both body sizes recorded
// with a sampled span in the context, as exemplars need), and one slog JSON
// record with Logger's keys.
func BenchmarkFloor(b *testing.B) {
	b.Run("sdk-metrics", func(b *testing.B) {
		mp, tp := benchkit.Providers(b)
		m := newMetrics(mp)
		ctx, span := tp.Tracer("floor").Start(context.Background(), "GET")
		defer span.End()
		active := m.activeSets[0][0]
		k := attrKey{method: "GET", scheme: "http", status: 200, route: "/users/{id}", proto: "1.1"}
		e := newEntry(k.attributes())
		b.ReportAllocs()
		for b.Loop() {
			m.active.Add(ctx, 1, active.add...)
			m.active.Add(ctx, -1, active.add...)
			m.duration.Record(ctx, 0.0015, e.record...)
			m.reqBody.Record(ctx, 0, e.record...)
			m.respBody.Record(ctx, 5, e.record...)
		}
	})
	b.Run("sdk-span", func(b *testing.B) {
		_, tp := benchkit.Providers(b)
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
				slog.Float64("duration_ms", 1.5),
				slog.Float64("ttfb_ms", 1.2),
				slog.String("client.address", "192.0.2.1"),
				slog.String("user_agent.original", "bench/1.0"),
				slog.String("network.protocol.version", "1.1"),
			)
		}
	})
}
