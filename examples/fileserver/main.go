// Command fileserver serves a directory over HTTP with chi and fastpath, and
// keeps every download on the kernel's sendfile(2) path:
//
//	go run ./examples/fileserver [-addr 127.0.0.1:8080] [-root .] [-list] [-send-timeout 1m] [-metrics-addr 127.0.0.1:9464]
//
// Routes: /files/* (the directory, through handlers.FileServer; /files
// redirects there), /metrics (Prometheus text format, or OpenMetrics with
// exemplars; on -metrics-addr instead when that is set), /healthz. Request
// logs are JSON lines on standard output, written in batches at least every
// 100 ms; traces and metrics also go over OTLP when the standard OTEL_*
// environment variables ask for it. SIGINT or SIGTERM shuts it down
// gracefully, writing out every record first.
//
// The fastpath wiring a service copies is all in run below; flags, the SDK
// setup and the http.Server with its timeouts are in examples/internal/app.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/propagation"

	"github.com/fastpath-go/fastpath/examples/internal/app"
	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/middleware"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "fileserver:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done; ready, when not nil, learns the address.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(net.Addr)) error {
	cfg, err := app.ParseFlags("fileserver", args, stderr)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return err
	}
	defer root.Close()

	// SDK providers: Prometheus on /metrics, OTLP when OTEL_* asks for it.
	tel, err := app.NewTelemetry(ctx, "fastpath-fileserver")
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())
	// One write(2) per batch of records, at least every 100 ms, instead of
	// one per request; Close, after the server has stopped, writes the
	// rest (a crash loses at most the last 100 ms: see app.LogWriter).
	logs := app.NewLogWriter(stdout)
	defer logs.Close()
	logger := slog.New(slog.NewJSONHandler(logs, nil))

	// Health checks and scrapes are not traffic worth recording.
	skip := middleware.WithSkip(func(r *http.Request) bool {
		return r.URL.Path == "/healthz" || r.URL.Path == "/metrics"
	})
	r := chi.NewRouter()
	r.Use(chimw.RequestID) // before Logger, so records carry request_id
	r.Use(
		// Tracing first: Metrics and Logger then see its span, so exemplars
		// and log records carry the trace id.
		middleware.Tracing(skip,
			middleware.WithTracerProvider(tel.TracerProvider),
			middleware.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))),
		middleware.Metrics(skip, middleware.WithMeterProvider(tel.MeterProvider)),
		middleware.Logger(logger, skip),
	)
	r.Get("/healthz", app.Healthz)
	if cfg.MetricsAddr == "" {
		r.Handle("/metrics", tel.Prometheus) // else app.Serve serves it on -metrics-addr
	}
	// As http.ServeMux does for a pattern ending in a slash.
	r.Handle("/files", http.RedirectHandler("/files/", http.StatusTemporaryRedirect))
	r.Handle("/files/*", http.StripPrefix("/files", handlers.FileServer(root, cfg.FileOptions()...)))

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	// Listener lets the middleware report, per request, the bytes the
	// kernel sent by sendfile (fastpath.response.sendfile.size).
	return app.Serve(ctx, cfg, middleware.Listener(ln), r, tel.Prometheus, logger, stderr, ready)
}
