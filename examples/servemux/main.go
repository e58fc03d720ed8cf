// Command servemux is examples/fileserver on net/http's ServeMux with Go
// 1.22 patterns instead of chi, with the same flags and routes:
//
//	go run ./examples/servemux [-addr 127.0.0.1:8080] [-root .] [-list] [-send-timeout 1m] [-metrics-addr 127.0.0.1:9464]
//
// The fastpath middleware wraps the mux from outside; the route is read from
// the pattern the mux matched.
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

	"go.opentelemetry.io/otel/propagation"

	"github.com/fastpath-go/fastpath/examples/internal/app"
	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/middleware"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "servemux:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done; ready, when not nil, learns the address.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(net.Addr)) error {
	cfg, err := app.ParseFlags("servemux", args, stderr)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return err
	}
	defer root.Close()
	tel, err := app.NewTelemetry(ctx, "fastpath-servemux")
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())
	logger := slog.New(slog.NewJSONHandler(stdout, nil))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", app.Healthz)
	if cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", tel.Prometheus) // else app.Serve serves it on -metrics-addr
	}
	// ServeMux redirects /files to /files/ by itself.
	mux.Handle("/files/", http.StripPrefix("/files", handlers.FileServer(root, cfg.FileOptions()...)))

	skip := middleware.WithSkip(func(r *http.Request) bool {
		return r.URL.Path == "/healthz" || r.URL.Path == "/metrics"
	})
	// Outermost first: Tracing, then Metrics and Logger inside its span.
	var h http.Handler = mux
	h = middleware.Logger(logger, skip)(h)
	h = middleware.Metrics(skip, middleware.WithMeterProvider(tel.MeterProvider))(h)
	h = middleware.Tracing(skip,
		middleware.WithTracerProvider(tel.TracerProvider),
		middleware.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))(h)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	return app.Serve(ctx, cfg, middleware.Listener(ln), h, tel.Prometheus, logger, stderr, ready)
}
