// Command proxy is the full fastpath observability stack in front of an
// upstream HTTP service, with every Content-Length body going from the
// upstream socket to the client socket by splice(2). In front of
// examples/fileserver, on its own port:
//
//	go run ./examples/proxy -upstream http://127.0.0.1:8080 [-addr 127.0.0.1:8082] [-max-idle 64] [-response-header-timeout 30s]
//
// Everything but /metrics and /healthz is proxied through
// proxy.ReverseProxy. Request logs are JSON lines on standard output, with
// http.response.body.size and fastpath.response.splice.size; traces and
// metrics also go over OTLP when the standard OTEL_* environment variables
// ask for it. SIGINT or SIGTERM shuts it down gracefully. -h lists the
// flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/fastpath-go/fastpath/examples/internal/app"
	"github.com/fastpath-go/fastpath/middleware"
	"github.com/fastpath-go/fastpath/proxy"
)

// serve is the fastpath wiring a service copies.
func serve(ctx context.Context, s *app.Server) error {
	target, err := url.Parse(opts.upstream)
	if err != nil || target.Host == "" || (target.Scheme != "http" && target.Scheme != "https") {
		return fmt.Errorf("-upstream %q: want an http:// (or https://) URL", opts.upstream)
	}
	// The upstream connections: pooled, with a bound on the wait for
	// headers. https upstreams go to http.DefaultTransport (and are copied).
	tr := &proxy.Transport{MaxIdleConnsPerHost: opts.maxIdle, ResponseHeaderTimeout: opts.headerTimeout}
	defer tr.CloseIdleConnections()
	rp := proxy.ReverseProxy(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: tr,
		ErrorLog:  slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	})

	r := chi.NewRouter()
	s.Mount(r) // /healthz and /metrics, not recorded: the middleware is on the proxied route only
	r.With(
		chimw.RequestID, // before Logger, so records carry request_id
		// Tracing first: Metrics and Logger then see its span, so exemplars
		// and log records carry the trace id, and the upstream request
		// carries its traceparent.
		middleware.Tracing(middleware.WithTracerProvider(s.TracerProvider), middleware.WithPropagators(s.Propagators)),
		middleware.Metrics(middleware.WithMeterProvider(s.MeterProvider)),
		middleware.Logger(s.Logger),
	).Handle("/*", rp)

	// Listener lets the middleware report the bytes spliced per request
	// (fastpath.response.splice.size).
	return s.Serve(ctx, middleware.Listener(s.Listener), r)
}

// opts are the proxy's own flags.
var opts struct {
	upstream      string
	maxIdle       int
	headerTimeout time.Duration
}

func flags(fs *flag.FlagSet) {
	fs.StringVar(&opts.upstream, "upstream", "", "the upstream's base URL, e.g. http://127.0.0.1:8080 (required)")
	fs.IntVar(&opts.maxIdle, "max-idle", 64, "idle upstream connections to keep")
	fs.DurationVar(&opts.headerTimeout, "response-header-timeout", 30*time.Second, "how long to wait for the upstream's response headers (0: no limit)")
}

// example is the command, for app.Main and the tests.
var example = app.Example{Name: "proxy", Addr: "127.0.0.1:8082", Flags: flags, Serve: serve,
	Describe: func() string { return "proxying to " + opts.upstream },
	Doc:      "proxy serves an upstream through fastpath's reverse proxy, every Content-Length body by splice."}

func main() { app.Main(example) }
