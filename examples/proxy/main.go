// Command proxy is the full fastpath observability stack in front of an
// upstream HTTP service, with every Content-Length body going from the
// upstream socket to the client socket by splice(2):
//
//	go run ./examples/proxy -upstream http://127.0.0.1:8081 [-addr 127.0.0.1:8080]
//
// Everything but /metrics (Prometheus text format) and /healthz is proxied
// through proxy.ReverseProxy. Request logs are JSON lines on standard
// output, with http.response.body.size and fastpath.response.splice.size;
// traces and metrics also go over OTLP when the standard OTEL_* environment
// variables ask for it. SIGINT or SIGTERM shuts it down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/propagation"

	"github.com/fastpath-go/fastpath/examples/internal/app"
	"github.com/fastpath-go/fastpath/middleware"
	"github.com/fastpath-go/fastpath/proxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done; ready, when not nil, learns the address.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(net.Addr)) error {
	fset := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fset.SetOutput(stderr)
	addr := fset.String("addr", "127.0.0.1:8080", "address to listen on")
	upstream := fset.String("upstream", "", "the upstream's base URL, e.g. http://127.0.0.1:8081 (required)")
	maxIdle := fset.Int("max-idle", 64, "idle upstream connections to keep")
	headerTimeout := fset.Duration("response-header-timeout", 30*time.Second, "how long to wait for the upstream's response headers (0: no limit)")
	shutdownTimeout := fset.Duration("shutdown-timeout", 30*time.Second, "on SIGINT or SIGTERM, how long in-flight requests get to finish")
	if err := fset.Parse(args); err != nil {
		return err
	}
	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" || (target.Scheme != "http" && target.Scheme != "https") {
		return fmt.Errorf("-upstream %q: want an http:// (or https://) URL", *upstream)
	}

	tel, err := app.NewTelemetry(ctx, "fastpath-proxy")
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())
	logger := slog.New(slog.NewJSONHandler(stdout, nil))

	// The upstream connections: pooled, with a bound on the wait for
	// headers. https upstreams go to http.DefaultTransport (and are copied).
	tr := &proxy.Transport{MaxIdleConnsPerHost: *maxIdle, ResponseHeaderTimeout: *headerTimeout}
	defer tr.CloseIdleConnections()
	rp := proxy.ReverseProxy(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: tr,
		ErrorLog:  slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	})

	skip := middleware.WithSkip(func(r *http.Request) bool {
		return r.URL.Path == "/healthz" || r.URL.Path == "/metrics"
	})
	r := chi.NewRouter()
	r.Use(chimw.RequestID)
	r.Use(
		middleware.Tracing(skip,
			middleware.WithTracerProvider(tel.TracerProvider),
			middleware.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))),
		middleware.Metrics(skip, middleware.WithMeterProvider(tel.MeterProvider)),
		middleware.Logger(logger, skip),
	)
	r.Get("/healthz", app.Healthz)
	r.Handle("/metrics", tel.Prometheus)
	r.Handle("/*", rp)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       app.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stderr, "fastpath: proxying http://%s/ to %s\n  metrics: http://%s/metrics\n", ln.Addr(), target, ln.Addr())
	errc := make(chan error, 1)
	// Listener lets the middleware report the bytes spliced per request
	// (fastpath.response.splice.size).
	go func() { errc <- srv.Serve(middleware.Listener(ln)) }()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
