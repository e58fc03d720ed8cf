package perrequest

import (
	"io"
	"log/slog"
	"testing"

	"github.com/go-chi/httplog/v3"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/fastpath-go/fastpath/internal/benchkit"
	"github.com/fastpath-go/fastpath/middleware"
)

// BenchmarkPerRequest measures, in one run and on one harness, each pair
// the README compares: fastpath's Metrics+Tracing and Logger+Metrics+Tracing
// against otelhttp (metrics and traces, with the same SDK providers), and
// fastpath's Logger against httplog with its OpenTelemetry schema (both
// writing slog JSON to io.Discard), with the bare router as the baseline.
func BenchmarkPerRequest(b *testing.B) {
	jsonLog := func() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }
	b.Run("bare", func(b *testing.B) { benchkit.Run(b, benchkit.Router()) })
	b.Run("otelhttp", func(b *testing.B) {
		mp, tp := benchkit.Providers(b)
		benchkit.Run(b, benchkit.Router(otelhttp.NewMiddleware("server",
			otelhttp.WithMeterProvider(mp), otelhttp.WithTracerProvider(tp))))
	})
	b.Run("fastpath/Metrics+Tracing", func(b *testing.B) {
		mp, tp := benchkit.Providers(b)
		benchkit.Run(b, benchkit.Router(
			middleware.Tracing(middleware.WithTracerProvider(tp)),
			middleware.Metrics(middleware.WithMeterProvider(mp))))
	})
	b.Run("fastpath/Logger+Metrics+Tracing", func(b *testing.B) {
		mp, tp := benchkit.Providers(b)
		benchkit.Run(b, benchkit.Router(
			middleware.Tracing(middleware.WithTracerProvider(tp)),
			middleware.Metrics(middleware.WithMeterProvider(mp)),
			middleware.Logger(jsonLog())))
	})
	b.Run("httplog", func(b *testing.B) {
		benchkit.Run(b, benchkit.Router(httplog.RequestLogger(jsonLog(), &httplog.Options{
			Level:  slog.LevelInfo,
			Schema: httplog.SchemaOTEL,
		})))
	})
	b.Run("fastpath/Logger", func(b *testing.B) {
		benchkit.Run(b, benchkit.Router(middleware.Logger(jsonLog())))
	})
}
