// Command servemux is examples/fileserver on net/http's ServeMux with Go
// 1.22 patterns instead of chi, with the same flags and routes, on its own
// port so the two run side by side:
//
//	go run ./examples/servemux [-addr 127.0.0.1:8081] [-root .] [-list] [-send-timeout 1m] [-metrics-addr 127.0.0.1:9464]
//
// The fastpath middleware wraps the mux from outside; the route is read from
// the pattern the mux matched.
package main

import (
	"context"
	"net/http"

	"github.com/fastpath-go/fastpath/examples/internal/app"
	"github.com/fastpath-go/fastpath/handlers"
	"github.com/fastpath-go/fastpath/middleware"
)

// serve is the fastpath wiring a service copies.
func serve(ctx context.Context, s *app.Server) error {
	mux := http.NewServeMux()
	s.Mount(mux) // /healthz and /metrics
	// ServeMux redirects /files to /files/ by itself.
	mux.Handle("/files/", http.StripPrefix("/files", handlers.FileServer(s.Root, s.FileOptions()...)))

	// Outermost first: Tracing, then Metrics and Logger inside its span, so
	// exemplars and log records carry the trace id. Health checks and
	// scrapes are skipped.
	skip := middleware.WithSkip(app.Plumbing)
	var h http.Handler = mux
	h = middleware.Logger(s.Logger, skip)(h)
	h = middleware.Metrics(skip, middleware.WithMeterProvider(s.MeterProvider))(h)
	h = middleware.Tracing(skip, middleware.WithTracerProvider(s.TracerProvider), middleware.WithPropagators(s.Propagators))(h)

	// Listener: per-request sendfile bytes (fastpath.response.sendfile.size).
	return s.Serve(ctx, middleware.Listener(s.Listener), h)
}

// example is the command, for app.Main and the tests.
var example = app.Example{Name: "servemux", Addr: "127.0.0.1:8081", Files: true, Serve: serve,
	Doc: "servemux serves a directory under /files/ with http.ServeMux and fastpath, every download by sendfile."}

func main() { app.Main(example) }
