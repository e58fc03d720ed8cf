// Command quickstart serves a directory with fastpath: JSON request logs
// with trace ids, Prometheus metrics with exemplars on /metrics, and OTLP
// when the standard OTEL_* environment asks for it. It is the README's "Use
// it" program, byte for byte; examples/fileserver adds graceful shutdown,
// timeouts and more.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/middleware"
	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	dir := flag.String("root", ".", "directory to serve under /files/")
	flag.Parse()
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))

	// The OpenTelemetry SDK: metrics for Prometheus on /metrics, and OTLP
	// too when the environment asks (OTEL_EXPORTER_OTLP_ENDPOINT, or
	// OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER). With none of them set,
	// autoexport would send OTLP to localhost: make that "none".
	for _, v := range []string{"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"} {
		if os.Getenv(v) == "" && os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
			os.Setenv(v, "none")
		}
	}
	ctx := context.Background()
	spans, err1 := autoexport.NewSpanExporter(ctx)
	otlpMetrics, err2 := autoexport.NewMetricReader(ctx)
	prom, err3 := otelprom.New() // registers with prometheus.DefaultRegisterer
	if err := errors.Join(err1, err2, err3); err != nil {
		log.Fatal(err)
	}
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithBatcher(spans)))
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(prom), sdkmetric.WithReader(otlpMetrics)))
	otel.SetTextMapPropagator(propagation.TraceContext{}) // continue incoming traceparent headers

	root, err := os.OpenRoot(*dir)
	if err != nil {
		log.Fatal(err)
	}
	r := chi.NewRouter()
	r.Use(chimw.RequestID) // before Logger, so records carry request_id
	// Tracing first: Metrics and Logger see its span, so log records and
	// exemplars carry its trace id.
	r.Use(middleware.Tracing(), middleware.Metrics(), middleware.Logger(logger))
	r.Handle("/files/*", http.StripPrefix("/files", handlers.FileServer(root)))
	// OpenMetrics, with exemplars, to a scraper that asks for it.
	r.Handle("/metrics", promhttp.HandlerFor(prometheus.DefaultGatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	logger.Info("serving", "root", *dir, "url", "http://"+ln.Addr().String()+"/files/")
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	// middleware.Listener: per-request sendfile bytes in the logs and metrics.
	log.Fatal(srv.Serve(middleware.Listener(ln)))
}
