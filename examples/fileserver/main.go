// Command fileserver serves a directory over HTTP with chi and fastpath, and
// keeps every download on the kernel's sendfile(2) path:
//
//	go run ./examples/fileserver [-addr 127.0.0.1:8080] [-root .] [-list] [-send-timeout 1m]
//
// Routes: /files/* (the directory, through handlers.FileServer), /metrics
// (Prometheus text format), /healthz. Request logs are JSON lines on standard
// output; traces and metrics also go over OTLP when the standard OTEL_*
// environment variables ask for it. SIGINT or SIGTERM shuts it down
// gracefully. The flags, telemetry and server setup it shares with
// examples/servemux are in examples/internal/app.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/fastpath-go/fastpath/examples/internal/app"
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
	return app.Run(ctx, "fileserver", args, stdout, stderr, ready, func(env app.Env) http.Handler {
		r := chi.NewRouter()
		r.Use(chimw.RequestID) // before Logger, so records carry request_id
		r.Use(env.Middleware...)
		r.Get("/healthz", app.Healthz)
		r.Handle("/metrics", env.Metrics)
		r.Handle("/files/*", http.StripPrefix("/files", env.Files))
		return r
	})
}
