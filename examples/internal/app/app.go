// Package app is the plumbing the example servers share and that has nothing
// to do with fastpath itself: flags, the OpenTelemetry SDK providers
// (Prometheus on /metrics, with exemplars and the Go runtime's and the
// process's own metrics; OTLP when the standard environment asks for it), and
// an http.Server with timeouts and graceful shutdown. The fastpath wiring
// (middleware order, providers, Listener) is in each example's main.go.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fastpath-go/fastpath/handlers"
)

// Config is what the flags set.
type Config struct {
	Addr              string        // listen address
	Root              string        // directory served
	Listing           bool          // directory listings
	SendTimeout       time.Duration // cut off a response that moves nothing for this long
	ReadHeaderTimeout time.Duration // cut off a client that does not finish its request headers
	ShutdownTimeout   time.Duration // how long in-flight requests get on SIGINT or SIGTERM
	DebugAddr         string        // where to serve net/http/pprof; "" for nowhere
	MetricsAddr       string        // where to serve /metrics instead of the public listener; "" for there
}

// FileOptions returns the handlers.FileServer options the flags ask for.
func (c Config) FileOptions() []handlers.Option {
	opts := []handlers.Option{handlers.WithSendTimeout(c.SendTimeout)}
	if c.Listing {
		opts = append(opts, handlers.WithDirectoryListing())
	}
	return opts
}

// ParseFlags parses the examples' flags.
func ParseFlags(name string, args []string, stderr io.Writer) (Config, error) {
	fset := flag.NewFlagSet(name, flag.ContinueOnError)
	fset.SetOutput(stderr)
	var c Config
	fset.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	fset.StringVar(&c.Root, "root", ".", "directory to serve under /files/")
	fset.BoolVar(&c.Listing, "list", false, "serve directory listings")
	fset.DurationVar(&c.SendTimeout, "send-timeout", time.Minute, "cut off a response, such as a download, that makes no progress for this long (0: never)")
	fset.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "cut off a client that has not sent its request headers after this long")
	fset.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT or SIGTERM, how long in-flight requests get to finish")
	fset.StringVar(&c.DebugAddr, "debug-addr", "", "serve net/http/pprof on this address (keep it private), e.g. 127.0.0.1:6060")
	fset.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve /metrics on this address instead of -addr, so metrics need not be public, e.g. 127.0.0.1:9464")
	if err := fset.Parse(args); err != nil {
		return c, err
	}
	if fset.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fset.Args())
	}
	return c, nil
}

// Telemetry is the OpenTelemetry SDK setup of an example server.
type Telemetry struct {
	MeterProvider *sdkmetric.MeterProvider
	// TracerProvider is the SDK's when traces are exported; otherwise it
	// records no spans but makes their ids (see idsOnly).
	TracerProvider trace.TracerProvider
	sdkTracer      *sdktrace.TracerProvider // nil when traces are not exported
	// Prometheus serves the metrics: the Prometheus text format, or
	// OpenMetrics with exemplars (the trace_id and span_id of a sampled
	// request) to a scraper that asks for it with
	// Accept: application/openmetrics-text. The Go runtime's and the
	// process's own metrics (go_*, process_*) are on it too.
	Prometheus http.Handler
}

// NewTelemetry sets up metrics, always readable on the Prometheus handler,
// and traces. Both also go over OTLP when the OTEL_* environment variables
// ask for it: OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER (otlp, console,
// none), or an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT and the per-signal
// variants). With none of them set, nothing leaves the process, and no
// spans are recorded: requests still get trace and span ids, for the logs,
// the exemplars and propagation.
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the service.
func NewTelemetry(ctx context.Context, service string) (*Telemetry, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The SDK's default exemplar filter keeps measurements made inside a
	// sampled span (the middleware records with the request's span), and
	// the exporter passes them on as Prometheus exemplars.
	prom, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(prom)}
	if otlpWanted("OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
		reader, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("metric exporter: %w", err)
		}
		mopts = append(mopts, sdkmetric.WithReader(reader))
	}
	var tp trace.TracerProvider = idsOnly{}
	var sdkTracer *sdktrace.TracerProvider
	if otlpWanted("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("span exporter: %w", err)
		}
		sdkTracer = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp))
		tp = sdkTracer
	}
	return &Telemetry{
		MeterProvider:  sdkmetric.NewMeterProvider(mopts...),
		TracerProvider: tp,
		sdkTracer:      sdkTracer,
		// Exemplars exist only in OpenMetrics; promhttp serves it to a
		// scraper that asks (Prometheus does) and the text format otherwise.
		Prometheus: promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}),
	}, nil
}

// otlpWanted reports whether the environment asks for an exporter: the
// signal's exporter variable is set (autoexport then reads it), or an OTLP
// endpoint is. autoexport alone would default to OTLP and try localhost when
// nothing is set.
func otlpWanted(exporterVar, endpointVar string) bool {
	return os.Getenv(exporterVar) != "" || os.Getenv(endpointVar) != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var err error
	if t.sdkTracer != nil {
		err = t.sdkTracer.Shutdown(ctx)
	}
	return errors.Join(err, t.MeterProvider.Shutdown(ctx))
}

// Healthz answers health checks.
func Healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// Timeouts of the example servers besides those the flags set. There is no
// WriteTimeout: it would cap every download's total time;
// handlers.WithSendTimeout cuts off stalled readers instead.
const (
	ReadTimeout = 30 * time.Second // the whole request, body included
	IdleTimeout = 2 * time.Minute  // between requests on a kept-alive connection
)

// Serve serves h on ln until ctx is done, then shuts down gracefully: in-flight requests get
// cfg.ShutdownTimeout to finish, after which the remaining connections are
// closed. When cfg.MetricsAddr is set it serves metrics on /metrics there (h
// then should not). It prints where it listens, and a curl command to try,
// to stderr; ready, when not nil, is called with the address once the server
// accepts connections.
//
// A connection closed before it delivered a complete request (a client that
// never finished its headers and was cut off by cfg.ReadHeaderTimeout, say)
// never reaches the middleware, so Serve logs it itself.
func Serve(ctx context.Context, cfg Config, ln net.Listener, h, metrics http.Handler, logger *slog.Logger, stderr io.Writer, ready func(net.Addr)) error {
	// served marks, per connection, whether a request reached the handler.
	var conns sync.Map // net.Conn -> *atomic.Bool
	// active counts the handlers running, so the records of responses cut
	// off at shutdown are written before the process exits.
	var active sync.WaitGroup
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			active.Add(1)
			defer active.Done()
			if served, ok := r.Context().Value(servedKey{}).(*atomic.Bool); ok {
				served.Store(true)
			}
			if cfg.SendTimeout > 0 {
				// Every response must be written within the send timeout;
				// a file download pushes the deadline on while it progresses
				// (handlers.WithSendTimeout).
				http.NewResponseController(w).SetWriteDeadline(time.Now().Add(cfg.SendTimeout))
			}
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			served := new(atomic.Bool)
			conns.Store(c, served)
			return context.WithValue(ctx, servedKey{}, served)
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			if st != http.StateClosed && st != http.StateHijacked {
				return
			}
			if v, ok := conns.LoadAndDelete(c); ok && st == http.StateClosed && !v.(*atomic.Bool).Load() {
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				logger.Info("connection closed before a complete request", "client.address", host)
			}
		},
	}
	metricsURL := "http://" + ln.Addr().String() + "/metrics"
	if cfg.MetricsAddr != "" {
		addr, stop, err := serveMetrics(cfg.MetricsAddr, metrics)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
		metricsURL = "http://" + addr.String() + "/metrics"
	}
	banner(stderr, ln.Addr(), metricsURL, cfg.Root, cfg.Listing)
	if cfg.DebugAddr != "" {
		stop, err := serveDebug(cfg.DebugAddr, stderr)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Downloads that did not finish in time are cut off; the
		// middleware records them as aborted as their handlers return.
		logger.Warn("shutdown timeout: closing the connections still open", "timeout", cfg.ShutdownTimeout)
		err = srv.Close()
		// Close does not wait for handlers; a handler on a closed
		// connection fails its next write (or sees its request context
		// canceled) and returns.
		if !waitTimeout(&active, handlerGrace) {
			logger.Error("shutdown: handlers still running after their connections were closed", "grace", handlerGrace)
		}
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// handlerGrace bounds the wait for handlers once their connections are
// closed at shutdown: a handler that ignores both its failing writes and its
// request context must not keep the process alive forever.
const handlerGrace = 30 * time.Second

// waitTimeout waits for wg, and reports false if d passed first.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// servedKey is the context key of a connection's served flag.
type servedKey struct{}

// serveMetrics serves metrics on /metrics of its own listener, which can be
// private while the files are public.
func serveMetrics(addr string, metrics http.Handler) (net.Addr, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: ReadTimeout, IdleTimeout: IdleTimeout}
	go srv.Serve(ln)
	return ln.Addr(), func() { srv.Close() }, nil
}

// serveDebug serves net/http/pprof on its own listener, away from the
// public one.
func serveDebug(addr string, stderr io.Writer) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Fprintf(stderr, "  debug:   http://%s/debug/pprof/\n", ln.Addr())
	return func() { srv.Close() }, nil
}

// banner prints where the server listens and a command to try. File names
// come from the served directory, which anyone may have written to: they
// are escaped into the URL and the URL is shell-quoted, so a file named
// $(touch x) is printed as a command that fetches it and runs nothing.
func banner(w io.Writer, addr net.Addr, metricsURL, root string, listing bool) {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = root
	}
	base := "http://" + addr.String()
	name := sampleFile(root)
	fmt.Fprintf(w, "fastpath: serving %s\n", abs)
	switch {
	case listing:
		fmt.Fprintf(w, "  files:   %s/files/\n", base)
	case name != "":
		// Without -list, /files/ itself answers 404: link a file.
		fmt.Fprintf(w, "  files:   %s/files/%s (directory listings are off; -list turns them on)\n", base, url.PathEscape(name))
	default:
		fmt.Fprintf(w, "  files:   %s/files/NAME (the directory has no file to show; -list turns listings on)\n", base)
	}
	fmt.Fprintf(w, "  metrics: %s\n", metricsURL)
	fmt.Fprintf(w, "  health:  %s/healthz\n", base)
	if name == "" {
		name = "FILE"
	}
	fmt.Fprintf(w, "try a range request:\n  curl -r 0-99 -o /dev/null -w '%%{http_code} %%{size_download}\\n' %s\n", shellQuote(base+"/files/"+url.PathEscape(name)))
}

// shellQuote quotes s for a POSIX shell: inside single quotes nothing is
// special but the single quote itself, which is closed, escaped and
// reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sampleFile returns the name of a regular file in dir, for the banner:
// the first in name order that is not hidden.
func sampleFile(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		// The file server refuses backslashes and control characters.
		odd := strings.ContainsFunc(e.Name(), func(r rune) bool { return r == '\\' || unicode.IsControl(r) })
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") && !odd {
			if fi, err := e.Info(); err == nil && fi.Mode()&fs.ModeType == 0 {
				return e.Name()
			}
		}
	}
	return ""
}
