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
// gracefully, writing out every record first. -h lists the flags.
//
// This file is the fastpath wiring a service copies; the flags, the SDK
// setup and the http.Server with its timeouts and shutdown are in
// examples/internal/app.
package main

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/fastpath-go/fastpath/examples/internal/app"
	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/middleware"
)

// serve is the fastpath wiring a service copies.
func serve(ctx context.Context, s *app.Server) error {
	// Health checks and scrapes are not traffic worth recording.
	skip := middleware.WithSkip(app.Plumbing)
	r := chi.NewRouter()
	r.Use(chimw.RequestID) // before Logger, so records carry request_id
	r.Use(
		// Tracing first: Metrics and Logger then see its span, so exemplars
		// and log records carry the trace id.
		middleware.Tracing(skip, middleware.WithTracerProvider(s.TracerProvider), middleware.WithPropagators(s.Propagators)),
		middleware.Metrics(skip, middleware.WithMeterProvider(s.MeterProvider)),
		middleware.Logger(s.Logger, skip),
	)
	s.Mount(r) // /healthz and /metrics
	// As http.ServeMux does for a pattern ending in a slash.
	r.Handle("/files", http.RedirectHandler("/files/", http.StatusTemporaryRedirect))
	r.Handle("/files/*", http.StripPrefix("/files", handlers.FileServer(s.Root, s.FileOptions()...)))

	// Listener lets the middleware report, per request, the bytes the
	// kernel sent by sendfile (fastpath.response.sendfile.size).
	return s.Serve(ctx, middleware.Listener(s.Listener), r)
}

// example is the command, for app.Main and the tests.
var example = app.Example{Name: "fileserver", Addr: "127.0.0.1:8080", Files: true, Serve: serve,
	Doc: "fileserver serves a directory under /files/ with chi and fastpath, every download by sendfile."}

func main() { app.Main(example) }
