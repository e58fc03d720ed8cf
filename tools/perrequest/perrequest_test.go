package perrequest

import (
	"io"
	"log/slog"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/fastpath-go/fastpath/internal/benchkit"
	"github.com/fastpath-go/fastpath/middleware"
)

// BenchmarkStack measures fastpath's stacks and otelhttp with the same SDK
// providers, in one run.
func BenchmarkStack(b *testing.B) {
	jsonLog := slog.New(slog.NewJSONHandler(io.Discard, nil))
	b.Run("bare", func(b *testing.B) { benchkit.Run(b, benchkit.Router()) })
	b.Run("fastpath/Metrics+Tracing", func(b *testing.B) {
		mp, tp := benchkit.Providers(b)
		benchkit.Run(b, benchkit.Router(middleware.Tracing(middleware.WithTracerProvider(tp)), middleware.Metrics(middleware.WithMeterProvider(mp))))
	})
	b.Run("fastpath/Logger+Metrics+Tracing", func(b *testing.B) {
		mp, tp := benchkit.Providers(b)
		benchkit.Run(b, benchkit.Router(middleware.Tracing(middleware.WithTracerProvider(tp)), middleware.Metrics(middleware.WithMeterProvider(mp)), middleware.Logger(jsonLog)))
	})
	b.Run("otelhttp", func(b *testing.B) {
		mp, tp := benchkit.Providers(b)
		benchkit.Run(b, benchkit.Router(otelhttp.NewMiddleware("server",
			otelhttp.WithMeterProvider(mp), otelhttp.WithTracerProvider(tp))))
	})
}
