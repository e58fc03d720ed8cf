// Command fileserver serves a directory over HTTP with chi and fastpath, and
// keeps every download on the kernel's sendfile(2) path:
//
//	go run ./examples/fileserver [-addr 127.0.0.1:8080] [-root .] [-list] [-send-timeout 1m]
//
// Routes: /files/* (the directory, through handlers.FileServer), /metrics
// (Prometheus text format), /healthz. Request logs are JSON lines on standard
// output; traces and metrics also go over OTLP when the standard OTEL_*
// environment variables ask for it. SIGINT or SIGTERM shuts it down
// gracefully.
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

	"github.com/fastpath-go/fastpath/examples/internal/app"
	"github.com/fastpath-go/fastpath/handlers"
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
	logger := slog.New(slog.NewJSONHandler(stdout, nil))
	tel, err := app.NewTelemetry(ctx, "fastpath-fileserver")
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())

	r := chi.NewRouter()
	r.Use(chimw.RequestID) // before Logger, so records carry request_id
	r.Use(tel.Middleware(logger)...)
	r.Get("/healthz", app.Healthz)
	r.Handle("/metrics", tel.Prometheus)
	r.Handle("/files/*", http.StripPrefix("/files", handlers.FileServer(root, cfg.FileOptions()...)))
	return app.Serve(ctx, cfg, r, logger, stderr, ready)
}
